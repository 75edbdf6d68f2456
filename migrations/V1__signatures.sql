-- The signature path: petitions, signatures, maintained counts, tokens and shared settings.

-- Values every instance must agree on, such as the generated identity pepper.
CREATE TABLE settings (
    name       text PRIMARY KEY,
    value      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE petitions (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug       text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$'),
    title      text NOT NULL,
    body       text NOT NULL,
    goal       bigint NOT NULL CHECK (goal > 0),
    locale     text NOT NULL,
    status     text NOT NULL DEFAULT 'open' CHECK (status IN ('draft', 'open', 'closed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per accepted signature. `id` is the receipt handed to the signer (the
-- client's own UUID when it sent one); `identity_key` is HMAC(pepper, petition,
-- canonical email), and its uniqueness per petition is what decides duplicates.
CREATE TABLE signatures (
    id              uuid PRIMARY KEY,
    petition_id     bigint NOT NULL,
    identity_key    bytea NOT NULL CHECK (length(identity_key) = 32),
    full_name       text NOT NULL,
    email           text NOT NULL,
    country         text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    postal_code     text,
    city            text,
    signer_kind     text NOT NULL CHECK (signer_kind IN ('person', 'organization')),
    organization    text,
    consent_updates boolean NOT NULL,
    locale          text,
    channel         text NOT NULL CHECK (channel IN ('web', 'event', 'paper')),
    signed_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (petition_id, identity_key)
);

-- Signatures carry no foreign key to petitions: its per-row check cost a fifth
-- of the insert (measured in benches/BENCHMARKS.md). Rows are only written for a
-- petition just read, and a petition that has signatures cannot be deleted:
CREATE FUNCTION refuse_deleting_signed_petitions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM signatures WHERE petition_id = OLD.id) THEN
        RAISE EXCEPTION 'petition % has signatures; close it instead', OLD.slug
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER petitions_keep_signed BEFORE DELETE ON petitions
    FOR EACH ROW EXECUTE FUNCTION refuse_deleting_signed_petitions();

-- Counts are maintained in the transaction that inserts, never counted. Each
-- writer adds to its own shard, so concurrent writers never wait on one hot row;
-- a cell's total is the sum over its shards.
CREATE TABLE signature_counts (
    petition_id bigint NOT NULL REFERENCES petitions (id),
    country     text NOT NULL,
    signer_kind text NOT NULL,
    shard       smallint NOT NULL,
    count       bigint NOT NULL CHECK (count >= 0),
    PRIMARY KEY (petition_id, country, signer_kind, shard)
);

-- API tokens: only the SHA-256 of the token is kept.
CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY,
    role         text NOT NULL CHECK (role IN ('admin', 'organizer', 'coordinator', 'device')),
    token_hash   bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);
