-- A pending signature's confirmation message waits on the signature's own
-- row rather than as an outbox row: `mail_due` is when a mailer should send
-- it (NULL: nothing to send), `mail_attempts` how often one tried. The
-- mailer composes the message from the row and its petition, and makes the
-- link's token again from the signature's id and the time in front of its
-- stored hash (crates/domain/src/token.rs), so that no token waits anywhere
-- in clear. An outbox row per signature (its heap tuple, three index
-- entries, a letter) was most of what confirming by email cost the
-- signature path; a due time in a partial index that holds only unsent
-- messages costs a small part of it (benches/BENCHMARKS.md). Withdrawal
-- links, and confirmation letters queued before this, stay in the outbox.
ALTER TABLE signatures
    ADD COLUMN mail_due timestamptz,
    ADD COLUMN mail_attempts smallint NOT NULL DEFAULT 0;
CREATE INDEX signatures_mail_due ON signatures (mail_due) WHERE mail_due IS NOT NULL;
