-- A queued message names the signature it is about, so that withdrawing or
-- erasing that signature forgets exactly its messages: found by an index, not
-- by comparing addresses (which missed an address whose case Postgres's
-- lower() and Rust's folded differently, took another petition's message to
-- the same person, and read the whole outbox each time).
ALTER TABLE outbox ADD COLUMN signature_id uuid;
-- Rows rarely outlive their sending, so the index stays small.
CREATE INDEX outbox_signature ON outbox (signature_id) WHERE signature_id IS NOT NULL;
-- Letters queued before this name their signature as their receipt.
UPDATE outbox SET signature_id = (letter->>'receipt')::uuid
    WHERE letter ? 'receipt' AND letter->>'receipt' <> '00000000-0000-0000-0000-000000000000';
-- Messages queued whole before letters (V13) name nobody; they are still
-- found by address, through an index that holds only them.
CREATE INDEX outbox_unnamed_recipient ON outbox (lower(recipient)) WHERE signature_id IS NULL;
