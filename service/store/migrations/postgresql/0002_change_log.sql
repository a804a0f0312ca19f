-- The change log every replica follows (docs/DEPLOY.md). One row per committed change to
-- the list; each entry row carries the seq of the last change that touched it, so a
-- replica at seq N reads the entries with changed_seq > N and applies their current state.
-- Writers take a transaction-level advisory lock before drawing a seq, so seqs commit in
-- order and a replica that has seen seq N has seen every change below it.
CREATE TABLE changes (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       TEXT NOT NULL,                      -- added, vetted, withdrawn
    entries    BIGINT NOT NULL,                    -- how many entries it touched
    created_at DOUBLE PRECISION NOT NULL
);
ALTER TABLE entries ADD COLUMN changed_seq BIGINT NOT NULL DEFAULT 0;
CREATE INDEX entries_by_change ON entries (changed_seq, entry_id);

-- Names this database, so an index snapshot is never loaded against another one.
CREATE TABLE store_identity (store_id TEXT NOT NULL);
INSERT INTO store_identity (store_id) VALUES (replace(gen_random_uuid()::text, '-', ''));
