-- The change log every replica follows (docs/DEPLOY.md). One row per committed change to
-- the list; each entry row carries the seq of the last change that touched it, so a
-- replica at seq N reads the entries with changed_seq > N and applies their current state.
CREATE TABLE changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, increases with commit order
    kind       TEXT NOT NULL,                      -- added, vetted, withdrawn
    entries    INTEGER NOT NULL,                   -- how many entries it touched
    created_at REAL NOT NULL
);
ALTER TABLE entries ADD COLUMN changed_seq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX entries_by_change ON entries (changed_seq, entry_id);

-- Names this database, so an index snapshot is never loaded against another one.
CREATE TABLE store_identity (store_id TEXT NOT NULL);
INSERT INTO store_identity (store_id) VALUES (lower(hex(randomblob(16))));
