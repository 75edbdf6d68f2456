-- Signatures collected on tablets at events and typed in from paper forms.

-- A tablet's signature keeps the time it was really given (`signed_at`, checked
-- against the event's window) apart from the time it reached us; the event and
-- the device it came through are recorded (no foreign keys, as for petitions:
-- their per-row checks cost inserts, and events and tokens are never deleted).
-- Where a petition allows it, an event or paper signature may come without an
-- e-mail address: its identity is then the normalized name, postal code and
-- country.
-- `received_at` is set for signatures collected offline only: for the
-- others (web, and every row from before), `signed_at` is when they arrived.
-- Nothing here rewrites or scans the table, so signing goes on while it runs;
-- the check, NOT VALID, holds for new rows (old ones all have an address: the
-- column was NOT NULL).
ALTER TABLE signatures
    ALTER COLUMN email DROP NOT NULL,
    ADD COLUMN received_at timestamptz,
    ADD COLUMN event_id    uuid,
    ADD COLUMN device_id   uuid,
    ADD CONSTRAINT signatures_email_online CHECK (email IS NOT NULL OR channel <> 'web') NOT VALID;

ALTER TABLE petitions
    ADD COLUMN email_optional_offline boolean NOT NULL DEFAULT false;

-- Per-event tallies for the event's own screen, maintained like
-- signature_counts: each writer adds to its own shard in the inserting
-- transaction, invalidations add to `removed` and their undoing to `restored`.
CREATE TABLE event_counts (
    event_id    uuid NOT NULL REFERENCES events (id),
    petition_id bigint NOT NULL REFERENCES petitions (id),
    shard       smallint NOT NULL,
    count       bigint NOT NULL DEFAULT 0 CHECK (count >= 0),
    removed     bigint NOT NULL DEFAULT 0 CHECK (removed >= 0),
    restored    bigint NOT NULL DEFAULT 0 CHECK (restored >= 0),
    PRIMARY KEY (event_id, shard)
);
