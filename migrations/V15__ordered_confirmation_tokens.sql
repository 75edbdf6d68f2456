-- Confirmation tokens carry the time they were made in front (8 bytes), and
-- are stored as that time followed by their SHA-256: 40 bytes, so that the
-- unique index of stored tokens grows at its right edge rather than at a
-- random page per signature (crates/domain/src/token.rs). Hashes of tokens
-- sent before (32 bytes) stay as they are, in the same index.
ALTER TABLE signatures DROP CONSTRAINT signatures_confirm_hash_check;
-- Rows stored before hold 32 bytes, as the earlier check made sure: only new
-- ones need checking, and the table is not read to add it.
ALTER TABLE signatures ADD CONSTRAINT signatures_confirm_hash_check
    CHECK (length(confirm_hash) IN (32, 40)) NOT VALID;
