-- Email confirmation: a petition may count its web signatures only once the
-- signer follows the link emailed to them. Until then a signature is pending:
-- stored, not counted, and erased when its time runs out.

-- Petitions made before this stay as they were (counted at once); new ones
-- confirm by email unless they say otherwise.
ALTER TABLE petitions
    ADD COLUMN verification text NOT NULL DEFAULT 'none'
        CHECK (verification IN ('email', 'none')),
    -- Where a confirmed signer lands, instead of the service's own page.
    ADD COLUMN confirmed_url text;
ALTER TABLE petitions ALTER COLUMN verification SET DEFAULT 'email';

-- `pending_until`: set while a signature awaits confirmation, the time it is
-- erased if none comes; NULL once confirmed, and for every signature that
-- never needed it. `confirm_hash`: SHA-256 of the emailed token (the token
-- itself is stored nowhere but in the message, while the outbox holds it).
-- It stays after confirmation, so that a second click finds a confirmed
-- signature rather than an unknown token.
ALTER TABLE signatures
    ADD COLUMN pending_until timestamptz,
    ADD COLUMN confirm_hash  bytea CHECK (length(confirm_hash) = 32);
CREATE UNIQUE INDEX signatures_confirm_hash ON signatures (confirm_hash)
    WHERE confirm_hash IS NOT NULL;
CREATE INDEX signatures_pending_until ON signatures (pending_until)
    WHERE pending_until IS NOT NULL;

-- Pending signatures are tallied like counted ones, as totals that only
-- grow: `pending` adds each signature stored pending, `settled` each one
-- that stopped being pending (confirmed, expired, withdrawn). A cell's
-- pending net is pending - settled; a confirmation also adds to `count`.
ALTER TABLE signature_counts
    ADD COLUMN pending bigint NOT NULL DEFAULT 0 CHECK (pending >= 0),
    ADD COLUMN settled bigint NOT NULL DEFAULT 0 CHECK (settled >= 0);
