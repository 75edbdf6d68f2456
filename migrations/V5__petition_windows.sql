-- A petition may open and close at set times; signing outside them is refused.
ALTER TABLE petitions
    ADD COLUMN opens_at  timestamptz,
    ADD COLUMN closes_at timestamptz,
    ADD CONSTRAINT petitions_window CHECK (opens_at IS NULL OR closes_at IS NULL OR opens_at < closes_at);
