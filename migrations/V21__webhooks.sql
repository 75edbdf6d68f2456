-- Webhooks (Standard Webhooks): endpoints that hear of signatures counted,
-- withdrawn and invalidated, of milestones and of closing.

-- Counts a petition announces once each when its count reaches them.
ALTER TABLE petitions ADD COLUMN milestones bigint[] NOT NULL DEFAULT '{}'
    CHECK (cardinality(milestones) <= 32 AND 0 < ALL (milestones));

CREATE TABLE webhooks (
    id uuid PRIMARY KEY,
    url text NOT NULL,
    -- Event types it hears; at least one.
    events text[] NOT NULL CHECK (cardinality(events) > 0),
    -- Only this petition's events (NULL: every petition's).
    petition_id bigint REFERENCES petitions (id),
    -- Consenting signers' names and addresses go in its payloads (set by an admin).
    include_personal_data boolean NOT NULL DEFAULT false,
    -- The signing secret, sealed (XChaCha20-Poly1305) under a key derived
    -- from the identity pepper with the webhook's id as associated data: the
    -- secret must be read back to sign, so it cannot be hashed like a token,
    -- and a copy of the database without the pepper does not give it.
    secret_sealed bytea NOT NULL,
    created_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Deliveries that succeeded, and the last one's time: successful
    -- deliveries leave no row (at full rate there are thousands a second).
    delivered bigint NOT NULL DEFAULT 0,
    last_delivered_at timestamptz
);

-- What happened, once for every endpoint that hears of it: written in the
-- transaction of the change it reports (a signature's batch, a
-- confirmation, a withdrawal, an invalidation's chunk; a milestone reached
-- or a petition found closed), and only when some webhook hears of that
-- kind on that petition, so nothing is reported that did not commit and
-- nothing is lost when a process dies. A row names what happened; what a
-- message says is composed when it is sent, so it holds nobody's name or
-- address. `id` and the position make the message's `webhook-id`, the
-- same on every try.
--
-- Each webhook reads the events in the order of `(xid, id)`, the
-- transaction that wrote them then their place in it, from its cursor up to
-- the oldest transaction still running (`pg_snapshot_xmin`): below it every
-- transaction has committed or rolled back, so no event can appear behind a
-- cursor later. One row per event however many webhooks hear of it, no
-- row per delivery: a delivery that fails is what leaves a row (below).
CREATE TABLE webhook_events (
    id bigint GENERATED ALWAYS AS IDENTITY,
    xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    kind text NOT NULL,
    petition_id bigint NOT NULL,
    -- The signatures it is about, in order: a batch's counted signatures
    -- are one event (one row for a thousand signatures, so that hearing of
    -- them costs the signature path next to nothing); each is a message of
    -- its own, `msg_<id>_<position>`. NULL for a petition's own events
    -- (one message, position 1).
    signatures uuid[],
    -- What else the event says (a milestone's count, a closing's time).
    data jsonb,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (xid, id)
);

-- Where each webhook's courier is in the events (an event, and a
-- position in it), and which instance's
-- courier holds it (until `courier_until`, renewed at every batch).
ALTER TABLE webhooks
    -- A new webhook starts at the oldest transaction still running when it
    -- is made: one that began before it and writes an event after seeing
    -- it is read too.
    ADD COLUMN cursor_xid xid8 NOT NULL DEFAULT pg_snapshot_xmin(pg_current_snapshot()),
    ADD COLUMN cursor_id bigint NOT NULL DEFAULT 0,
    ADD COLUMN cursor_position integer NOT NULL DEFAULT 0,
    ADD COLUMN courier uuid,
    ADD COLUMN courier_until timestamptz;

-- Messages whose first try failed: tried again with growing waits until
-- delivered (then deleted) or given up on ('dead'), each a copy of its
-- event so that retries outlive the events' sweep. No foreign key: deleting
-- a webhook deletes its rows itself.
CREATE TABLE webhook_deliveries (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id uuid NOT NULL,
    -- The event's id and the message's position in it: its `webhook-id`.
    message bigint NOT NULL,
    position integer NOT NULL,
    kind text NOT NULL,
    petition_id bigint NOT NULL,
    signature_id uuid,
    data jsonb,
    occurred_at timestamptz NOT NULL,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'dead')),
    attempts smallint NOT NULL DEFAULT 1,
    -- When a courier should try next; a courier that takes it leases it
    -- until then, so one that dies leaves it due again.
    due_at timestamptz NOT NULL,
    last_attempt_at timestamptz,
    last_status smallint,
    last_error text
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (webhook_id, due_at)
    WHERE state = 'pending';

-- Milestones reached, once each per petition.
CREATE TABLE petition_milestones (
    petition_id bigint NOT NULL REFERENCES petitions (id),
    milestone bigint NOT NULL,
    count bigint NOT NULL,
    reached_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (petition_id, milestone)
);

-- When a petition's closing was reported (NULL: not closed, or not yet).
-- Petitions already closed were closed before anyone could hear of it.
ALTER TABLE petitions ADD COLUMN closed_reported_at timestamptz;
UPDATE petitions SET closed_reported_at = now()
    WHERE closed_at IS NOT NULL OR closes_at <= now();
