-- Count history: how each petition's count moved, by minute, hour and day
-- (UTC). Kept by triggers on signature_counts, so every statement that
-- changes a count (a writer's batch, a confirmation, an invalidation and its
-- undoing, a withdrawal, an erasure) records its change in the same
-- transaction: the history cannot drift from the counts, and a restart loses
-- nothing.
--
-- A row is the net change of the counted signatures (count - removed +
-- restored; pending ones are not counted) of one petition, in one interval,
-- from one shard of signature_counts: each writer keeps to its own shard
-- there, and so here, so that two writers never wait on one history row.
-- Each change is kept three times, once per unit, so that a year reads as
-- 365 days (or 8,760 hours) rather than 525,600 minutes. A change is recorded
-- when it was made (an invalidation of last week's signatures lowers this
-- minute's count), so the running total at any time is the count the
-- counter showed then. Only counts are kept: nothing here names a signer.
CREATE TABLE count_history (
    petition_id   bigint NOT NULL,
    unit          text NOT NULL CHECK (unit IN ('minute', 'hour', 'day')),
    at            timestamptz NOT NULL,
    shard         smallint NOT NULL,
    people        bigint NOT NULL,
    organizations bigint NOT NULL,
    PRIMARY KEY (petition_id, unit, at, shard)
);

-- Rows of one statement are grouped by petition and shard and written in
-- the key's order, so that two statements never lock history rows in
-- opposite orders. `now()` is the transaction's start: a batch is recorded
-- in the minute it began.
CREATE FUNCTION count_history_record(
    petition_ids bigint[], shards smallint[], people bigint[], organizations bigint[]
) RETURNS void LANGUAGE sql AS $$
    INSERT INTO count_history (petition_id, unit, at, shard, people, organizations)
    SELECT c.petition_id, u.unit, date_trunc(u.unit, now(), 'UTC'), c.shard, c.people,
           c.organizations
    FROM unnest(petition_ids, shards, people, organizations)
             AS c (petition_id, shard, people, organizations)
    CROSS JOIN (VALUES ('day'), ('hour'), ('minute')) AS u (unit)
    ORDER BY c.petition_id, u.unit, c.shard
    ON CONFLICT (petition_id, unit, at, shard) DO UPDATE
        SET people = count_history.people + EXCLUDED.people,
            organizations = count_history.organizations + EXCLUDED.organizations
$$;

CREATE FUNCTION count_history_of_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM count_history_record(array_agg(petition_id), array_agg(shard), array_agg(people::bigint),
                                 array_agg(organizations::bigint))
    FROM (SELECT petition_id, shard,
                 coalesce(sum(count - removed + restored)
                          FILTER (WHERE signer_kind = 'person'), 0) AS people,
                 coalesce(sum(count - removed + restored)
                          FILTER (WHERE signer_kind = 'organization'), 0) AS organizations
          FROM inserted
          GROUP BY petition_id, shard) g
    WHERE people <> 0 OR organizations <> 0;
    RETURN NULL;
END $$;

CREATE FUNCTION count_history_of_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM count_history_record(array_agg(petition_id), array_agg(shard), array_agg(people::bigint),
                                 array_agg(organizations::bigint))
    FROM (SELECT a.petition_id, a.shard,
                 coalesce(sum((a.count - a.removed + a.restored) - (b.count - b.removed + b.restored))
                          FILTER (WHERE a.signer_kind = 'person'), 0) AS people,
                 coalesce(sum((a.count - a.removed + a.restored) - (b.count - b.removed + b.restored))
                          FILTER (WHERE a.signer_kind = 'organization'), 0) AS organizations
          FROM after_update a
          JOIN before_update b USING (petition_id, country, signer_kind, shard)
          GROUP BY a.petition_id, a.shard) g
    WHERE people <> 0 OR organizations <> 0;
    RETURN NULL;
END $$;

CREATE TRIGGER signature_counts_history_inserted
    AFTER INSERT ON signature_counts REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION count_history_of_inserted();
CREATE TRIGGER signature_counts_history_updated
    AFTER UPDATE ON signature_counts
    REFERENCING OLD TABLE AS before_update NEW TABLE AS after_update
    FOR EACH STATEMENT EXECUTE FUNCTION count_history_of_updated();

-- What was counted before: each counted signature in the minute it was
-- signed, then one change now that makes the running total equal to the
-- counts (for whatever the rows no longer tell: erased, invalidated and
-- restored), then the hours and days those minutes make.
INSERT INTO count_history (petition_id, unit, at, shard, people, organizations)
SELECT petition_id, 'minute', date_trunc('minute', signed_at, 'UTC'), 0,
       count(*) FILTER (WHERE signer_kind = 'person'),
       count(*) FILTER (WHERE signer_kind = 'organization')
FROM signatures
WHERE shadowed_by IS NULL AND invalidated_by IS NULL AND withdrawn_at IS NULL
  AND pending_until IS NULL
GROUP BY petition_id, date_trunc('minute', signed_at, 'UTC');

INSERT INTO count_history (petition_id, unit, at, shard, people, organizations)
SELECT c.petition_id, 'minute', date_trunc('minute', now(), 'UTC'), 0,
       c.people - coalesce(h.people, 0), c.organizations - coalesce(h.organizations, 0)
FROM (SELECT petition_id,
             coalesce(sum(count - removed + restored)
                      FILTER (WHERE signer_kind = 'person'), 0) AS people,
             coalesce(sum(count - removed + restored)
                      FILTER (WHERE signer_kind = 'organization'), 0) AS organizations
      FROM signature_counts GROUP BY petition_id) c
LEFT JOIN (SELECT petition_id, sum(people) AS people, sum(organizations) AS organizations
           FROM count_history GROUP BY petition_id) h USING (petition_id)
WHERE c.people <> coalesce(h.people, 0) OR c.organizations <> coalesce(h.organizations, 0)
ON CONFLICT (petition_id, unit, at, shard) DO UPDATE
    SET people = count_history.people + EXCLUDED.people,
        organizations = count_history.organizations + EXCLUDED.organizations;

INSERT INTO count_history (petition_id, unit, at, shard, people, organizations)
SELECT petition_id, u.unit, date_trunc(u.unit, at, 'UTC'), shard, sum(people), sum(organizations)
FROM count_history CROSS JOIN (VALUES ('hour'), ('day')) AS u (unit)
WHERE count_history.unit = 'minute'
GROUP BY petition_id, u.unit, date_trunc(u.unit, at, 'UTC'), shard;
