-- Sealed petitions: a petition may name `age` recipients (the campaign's
-- public keys), and its signers' personal fields are then sealed to them
-- before they reach this database (crates/seal explains the construction).
ALTER TABLE petitions ADD COLUMN sealing_recipients text[] NOT NULL DEFAULT '{}';

-- One epoch key per instance and petition at a time, as wrapped to the
-- recipients with age: only a recipient's identity opens it. Stored before
-- the first row it seals; `recipients` names who may open it (for an error
-- that says whose key is needed), never anything secret.
CREATE TABLE seal_epochs (
    id          uuid PRIMARY KEY,
    petition_id bigint NOT NULL REFERENCES petitions (id) ON DELETE CASCADE,
    recipients  text[] NOT NULL,
    wrapped     bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX seal_epochs_by_petition ON seal_epochs (petition_id, created_at);

-- A sealed signature keeps its personal fields in `sealed` (version, epoch,
-- nonce, ciphertext) and none in clear: `full_name` is empty (as an erased
-- one's is), email, organization, postal code and city are null. What abuse
-- handling needs stays in clear: the email's domain (lower case) and the
-- client address cut to its /24 or /48 network. A web signature waiting for
-- its confirmation message holds its address in clear until the message is
-- sent.
ALTER TABLE signatures
    ADD COLUMN sealed       bytea,
    ADD COLUMN email_domain text;
ALTER TABLE signatures
    DROP CONSTRAINT signatures_email_online,
    ADD CONSTRAINT signatures_email_online
        CHECK (email IS NOT NULL OR channel <> 'web' OR withdrawn_at IS NOT NULL
               OR sealed IS NOT NULL) NOT VALID;
