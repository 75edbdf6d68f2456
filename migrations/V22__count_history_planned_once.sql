-- count_history_record (V17) becomes PL/pgSQL, with the same statement.
-- PostgreSQL parses, analyses and plans the body of a SQL function that it
-- cannot inline (this one inserts) on every call, and caches nothing across
-- calls before version 18. The triggers call it once for each statement that
-- changes a count, so once for every writer's batch. Measured with perf
-- while signing at 5,000/s, that parsing and planning was a quarter of
-- Postgres's CPU (benches/BENCHMARKS.md, "Count history's statement planned
-- once"). PL/pgSQL prepares its statements once per connection and keeps the
-- plan.
CREATE OR REPLACE FUNCTION count_history_record(
    petition_ids bigint[], shards smallint[], people bigint[], organizations bigint[]
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO count_history (petition_id, unit, at, shard, people, organizations)
    SELECT c.petition_id, u.unit, date_trunc(u.unit, now(), 'UTC'), c.shard, c.people,
           c.organizations
    FROM unnest(petition_ids, shards, people, organizations)
             AS c (petition_id, shard, people, organizations)
    CROSS JOIN (VALUES ('day'), ('hour'), ('minute')) AS u (unit)
    ORDER BY c.petition_id, u.unit, c.shard
    ON CONFLICT (petition_id, unit, at, shard) DO UPDATE
        SET people = count_history.people + EXCLUDED.people,
            organizations = count_history.organizations + EXCLUDED.organizations;
END $$;
