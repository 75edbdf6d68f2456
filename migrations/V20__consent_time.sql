-- When a signer confirmed their address (double opt-in), for the export of
-- those who asked to be kept informed: the time of their consent is this,
-- or the signing time where no confirmation was asked.
ALTER TABLE signatures ADD COLUMN confirmed_at timestamptz;
