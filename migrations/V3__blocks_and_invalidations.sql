-- Abuse handling: block and allow rules, shadow-accepted signatures, bulk
-- invalidation that can be undone, and what they need to be exact.

-- The client address a signature came from (for invalidating a range), and why
-- a stored signature is not counted: a shadow rule when it arrived, or an
-- invalidation later. No foreign keys: their per-row check would tax every insert.
ALTER TABLE signatures
    ADD COLUMN client_address inet,
    ADD COLUMN shadowed_by    bigint,
    ADD COLUMN invalidated_by bigint;
-- Signals and time-window invalidations read recent rows; rows arrive in time
-- order, so a BRIN index costs next to nothing on insert.
CREATE INDEX signatures_signed_at ON signatures USING brin (signed_at);
CREATE INDEX signatures_invalidated_by ON signatures (invalidated_by)
    WHERE invalidated_by IS NOT NULL;

-- Counts stay monotonic so instances can merge them by taking the highest:
-- an invalidation adds to `removed`, its undo to `restored`; a cell's net count
-- is count - removed + restored. Adjustments use their own shard (-1).
ALTER TABLE signature_counts
    ADD COLUMN removed  bigint NOT NULL DEFAULT 0 CHECK (removed >= 0),
    ADD COLUMN restored bigint NOT NULL DEFAULT 0 CHECK (restored >= 0);

CREATE TABLE block_rules (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('address', 'email_domain', 'email')),
    -- A CIDR, a domain glob (`*.example`), or a canonical email address.
    pattern     text NOT NULL,
    action      text NOT NULL CHECK (action IN ('reject', 'shadow', 'allow')),
    reason      text NOT NULL,
    -- NULL: every petition.
    petition_id bigint REFERENCES petitions (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  uuid REFERENCES api_tokens (id),
    removed_at  timestamptz,
    removed_by  uuid REFERENCES api_tokens (id)
);

-- Its audit entry summarizes the criteria (receipts by number); the job keeps
-- them whole, an address range included, for as long as it may be undone.
CREATE TABLE invalidations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    petition_id bigint NOT NULL REFERENCES petitions (id),
    -- What it matches: address range, email domain, country, time window, receipts.
    criteria    jsonb NOT NULL,
    reason      text NOT NULL,
    state       text NOT NULL DEFAULT 'running'
        CHECK (state IN ('running', 'done', 'undoing', 'undone')),
    -- Signatures stamped so far (and, while undoing, still stamped).
    affected    bigint NOT NULL DEFAULT 0,
    -- The last signature id examined: chunks walk the ids in order.
    cursor      uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  uuid REFERENCES api_tokens (id),
    finished_at timestamptz,
    undone_at   timestamptz,
    undone_by   uuid REFERENCES api_tokens (id)
);
