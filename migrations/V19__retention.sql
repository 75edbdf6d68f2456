-- Retention: a petition keeps its signers' personal fields for
-- `retention_days` after it closes (NULL: for as long as an admin keeps it),
-- then a sweeper erases them, keeping receipts, countries, times and counts.
-- A petition closes when its status becomes `closed` (`closed_at`, set here
-- by a trigger, whichever path closes it) or at its `closes_at`, whichever
-- comes first; `personal_data_erased_at` says when the sweeper was done.
-- Petitions created before this version keep their signers' data as they
-- always did (NULL) until an admin gives them a retention; new ones get 180
-- days unless they say otherwise.
ALTER TABLE petitions
    ADD COLUMN retention_days integer CHECK (retention_days BETWEEN 0 AND 36500),
    ADD COLUMN closed_at timestamptz,
    ADD COLUMN personal_data_erased_at timestamptz;
ALTER TABLE petitions ALTER COLUMN retention_days SET DEFAULT 180;

CREATE FUNCTION petitions_closed_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'closed' THEN
        IF TG_OP = 'INSERT' OR OLD.status <> 'closed' THEN
            NEW.closed_at := now();
        END IF;
    ELSE
        NEW.closed_at := NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER petitions_closed_at BEFORE INSERT OR UPDATE OF status ON petitions
    FOR EACH ROW EXECUTE FUNCTION petitions_closed_at();

-- A petition whose signers' data is erased stays closed, whatever path would
-- open it: it could no longer tell a returning signer from a new one.
CREATE FUNCTION petitions_stay_closed_once_erased() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.personal_data_erased_at IS NOT NULL AND NEW.status <> 'closed' THEN
        RAISE EXCEPTION 'petition % had its signers'' data erased on %: it stays closed',
            OLD.slug, OLD.personal_data_erased_at
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER petitions_stay_closed_once_erased BEFORE UPDATE OF status ON petitions
    FOR EACH ROW EXECUTE FUNCTION petitions_stay_closed_once_erased();

-- Petitions closed before this migration: closed as of their last change,
-- the latest they can have closed.
UPDATE petitions SET closed_at = updated_at WHERE status = 'closed';

-- A web signature erased by retention has no address left, like a withdrawn
-- one; its identity key goes with it, which says so.
ALTER TABLE signatures
    DROP CONSTRAINT signatures_email_online,
    ADD CONSTRAINT signatures_email_online
        CHECK (email IS NOT NULL OR channel <> 'web' OR withdrawn_at IS NOT NULL
               OR sealed IS NOT NULL OR identity_key IS NULL) NOT VALID;
