-- Roles with scopes: organizers hold petitions, coordinators one petition and
-- some countries; every administrative action is kept, append-only, with the
-- address it came from.

ALTER TABLE api_tokens
    ADD COLUMN petition_ids bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN countries    text[] NOT NULL DEFAULT '{}';

ALTER TABLE audit_log ADD COLUMN client_address inet;
CREATE INDEX audit_log_action ON audit_log (action, id);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_never_truncated BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
