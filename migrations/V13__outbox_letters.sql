-- A message may wait in the outbox as a letter to compose when it is sent
-- (its kind, language, petition title, receipt and link token: a hundred
-- bytes or so) rather than as the whole RFC 5322 text (two kilobytes), so
-- that signing on a petition that confirms by email costs little more than
-- signing on one that does not (benches/BENCHMARKS.md).
ALTER TABLE outbox
    ALTER COLUMN message DROP NOT NULL,
    ADD COLUMN letter jsonb,
    ADD CONSTRAINT outbox_message_or_letter CHECK ((message IS NULL) <> (letter IS NULL));
