-- Messages waiting to be sent: written in the transaction that makes them due
-- (a signature's batch, a withdrawal), taken by mailers with SKIP LOCKED and
-- deleted once sent or given up on. A row holds an address and a rendered
-- message, so nothing here outlives its delivery.
CREATE TABLE outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- What the message is for ('confirmation', 'withdrawal'), for metrics.
    kind text NOT NULL,
    sender text NOT NULL,
    recipient text NOT NULL,
    -- RFC 5322, rendered when queued.
    message bytea NOT NULL,
    -- Tries so far; a mailer that takes a row counts one and leases it until
    -- due_at, so a mailer that dies mid-send leaves it due again.
    attempts integer NOT NULL DEFAULT 0,
    due_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_due ON outbox (due_at);
