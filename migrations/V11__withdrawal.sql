-- Signers' rights: withdrawing a signature, erasure on request, and pending
-- signatures that expire. What is erased leaves a tombstone: the receipt, its
-- country, kind, channel and time (the counts need them), and nothing that
-- names or reaches a person.

ALTER TABLE signatures
    -- Erased with the rest of the signer's data.
    ALTER COLUMN identity_key DROP NOT NULL,
    -- Set when the signer withdrew it or asked for erasure; the row then
    -- holds no personal data and counts nowhere.
    ADD COLUMN withdrawn_at timestamptz,
    -- SHA-256 of the token in the withdrawal link last sent, and until when
    -- it works.
    ADD COLUMN withdraw_hash bytea CHECK (length(withdraw_hash) = 32),
    ADD COLUMN withdraw_until timestamptz,
    -- Messages sent to this signature's address since `mail_window` began
    -- (a day): confirmations resent and withdrawal links, at most 3 a day, so
    -- that nobody can have the service flood a stranger's mailbox.
    ADD COLUMN mail_sent smallint NOT NULL DEFAULT 0,
    ADD COLUMN mail_window timestamptz;
CREATE UNIQUE INDEX signatures_withdraw_hash ON signatures (withdraw_hash)
    WHERE withdraw_hash IS NOT NULL;
-- Erasure on request finds a signer's rows by (petition, identity key), one
-- key per petition: the unique index signatures already has.

-- A web signature has an email address until it is withdrawn.
ALTER TABLE signatures
    DROP CONSTRAINT signatures_email_online,
    ADD CONSTRAINT signatures_email_online
        CHECK (email IS NOT NULL OR channel <> 'web' OR withdrawn_at IS NOT NULL) NOT VALID;
