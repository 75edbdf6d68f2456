-- The web channel: per-petition CORS origins, landing pages for plain HTML
-- forms, the captcha policy; and the audit trail of administrative actions.

ALTER TABLE petitions
    ADD COLUMN allowed_origins   text[] NOT NULL DEFAULT '{}',
    ADD COLUMN thank_you_url     text,
    ADD COLUMN error_url         text,
    ADD COLUMN captcha           text NOT NULL DEFAULT 'required'
        CHECK (captcha IN ('required', 'off')),
    ADD COLUMN captcha_fail_open boolean NOT NULL DEFAULT false;

-- Who did what, when. `detail` never holds a signer's personal data.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    token_id    uuid REFERENCES api_tokens (id),
    action      text NOT NULL,
    petition_id bigint REFERENCES petitions (id),
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_petition ON audit_log (petition_id, at);
