-- A petition speaks several languages, is addressed to parliaments and
-- organizations, and sets what its signers must give and who may sign.
-- `title`, `body` and `locale` remain the default locale's wording.
ALTER TABLE petitions
    ADD COLUMN ask text,
    -- {"fr": {"title": …, "text": …, "ask": …}, …}, never the default locale.
    ADD COLUMN translations jsonb NOT NULL DEFAULT '{}'
        CHECK (jsonb_typeof(translations) = 'object' AND NOT translations ? locale),
    -- [{"name": …, "country": "NL" or null, "contact": … or null}, …], in order.
    ADD COLUMN targets jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(targets) = 'array'),
    ADD COLUMN required_fields text[] NOT NULL DEFAULT '{}'
        CHECK (required_fields <@ ARRAY['postal_code', 'city']),
    ADD COLUMN organizations_may_sign boolean NOT NULL DEFAULT true;
