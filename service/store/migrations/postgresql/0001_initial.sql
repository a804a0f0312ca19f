-- HashGuard schema v1 (PostgreSQL), the same tables as the SQLite store. Hash values are
-- raw canonical bytes. Secrets (API keys, case tokens) are stored only as SHA-256
-- digests. Image bytes are never stored. Times are Unix seconds.
CREATE TABLE api_keys (
    key_id      TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL,
    secret_hash BYTEA NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    revoked_at  DOUBLE PRECISION
);

CREATE TABLE cases (
    case_id      TEXT PRIMARY KEY,
    token_hash   BYTEA NOT NULL,
    state        TEXT NOT NULL,
    submitted_by TEXT NOT NULL,
    created_at   DOUBLE PRECISION NOT NULL,
    withdrawn_at DOUBLE PRECISION
);

CREATE TABLE entries (
    entry_id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id      TEXT REFERENCES cases (case_id),  -- NULL for imported entries
    algorithm    TEXT NOT NULL,
    value        BYTEA,                            -- NULL once withdrawn
    state        TEXT NOT NULL,
    created_at   DOUBLE PRECISION NOT NULL,
    vetted_at    DOUBLE PRECISION,
    withdrawn_at DOUBLE PRECISION
);
CREATE INDEX entries_by_case ON entries (case_id) WHERE case_id IS NOT NULL;
-- Re-importing a list is idempotent: one imported entry per (algorithm, value).
CREATE UNIQUE INDEX entries_imported ON entries (algorithm, value) WHERE case_id IS NULL;

CREATE TABLE hits (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- paging order
    hit_id      TEXT NOT NULL UNIQUE,
    operator    TEXT NOT NULL,
    content_ref TEXT NOT NULL,
    state       TEXT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    note        TEXT NOT NULL DEFAULT '',
    resolved_by TEXT NOT NULL DEFAULT '',
    resolved_at DOUBLE PRECISION
);
CREATE INDEX hits_by_state ON hits (state, seq);

CREATE TABLE hit_matches (
    hit_id      TEXT NOT NULL REFERENCES hits (hit_id),
    entry_id    BIGINT NOT NULL REFERENCES entries (entry_id),
    algorithm   TEXT NOT NULL,
    query_value BYTEA,     -- the upload's matching hash; NULL once the entry is withdrawn
    distance    INTEGER NOT NULL,
    PRIMARY KEY (hit_id, entry_id)
);
CREATE INDEX hit_matches_by_entry ON hit_matches (entry_id, query_value);
