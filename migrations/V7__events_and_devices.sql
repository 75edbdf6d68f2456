-- Street events (a stand on a square, a flash mob, a conference) where tablets
-- collect signatures, and the tablets themselves: each enrolled with a
-- one-time code for one event, holding a device token bound to it.

CREATE TABLE events (
    id          uuid PRIMARY KEY,
    petition_id bigint NOT NULL REFERENCES petitions (id),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    place       text CHECK (length(place) <= 200),
    country     text CHECK (country ~ '^[A-Z]{2}$'),
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE INDEX events_by_petition ON events (petition_id, starts_at);

-- A device token may belong to an event (enrolled with a code) and carries the
-- label its volunteers gave the tablet.
ALTER TABLE api_tokens
    ADD COLUMN event_id uuid REFERENCES events (id),
    ADD COLUMN label    text CHECK (length(label) BETWEEN 1 AND 100),
    ADD CHECK (event_id IS NULL OR role = 'device');
CREATE INDEX api_tokens_by_event ON api_tokens (event_id) WHERE event_id IS NOT NULL;

-- One-time enrollment codes: only their SHA-256 is kept; a code is spent by
-- the tablet that exchanges it, which is recorded.
CREATE TABLE enrollment_codes (
    code_hash  bytea PRIMARY KEY CHECK (length(code_hash) = 32),
    event_id   uuid NOT NULL REFERENCES events (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    device_id  uuid REFERENCES api_tokens (id),
    CHECK ((used_at IS NULL) = (device_id IS NULL))
);
