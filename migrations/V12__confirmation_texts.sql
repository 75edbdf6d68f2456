-- A petition's own words for its confirmation email, by locale:
-- {"fr": {"subject": "…", "body": "… {link} …"}}; the service's built-in
-- words serve the locales it leaves out.
ALTER TABLE petitions
    ADD COLUMN confirmation_texts jsonb NOT NULL DEFAULT '{}'
        CHECK (jsonb_typeof(confirmation_texts) = 'object');
