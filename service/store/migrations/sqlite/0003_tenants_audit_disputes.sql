-- Tenants, the audit log and disputed entries (docs/SECURITY.md).
-- Keys and hits made before tenants existed belong to the tenant 'default'.
ALTER TABLE api_keys ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE api_keys ADD COLUMN rotated_at REAL;
ALTER TABLE hits ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
CREATE INDEX hits_by_tenant ON hits (tenant, state, seq);

-- Set once moderators of enough distinct tenants rejected hits on a pending entry: it
-- stops asking for review and is listed for admins.
ALTER TABLE entries ADD COLUMN disputed_at REAL;
CREATE INDEX entries_disputed ON entries (entry_id) WHERE disputed_at IS NOT NULL;

-- Every state change and privileged read: who, what, when. Never image bytes, hash
-- values or case tokens. Append-only: the triggers refuse updates and deletes.
CREATE TABLE audit_log (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at      REAL NOT NULL,
    actor   TEXT NOT NULL,   -- key name, or cli:<user> for local commands
    role    TEXT NOT NULL,
    tenant  TEXT NOT NULL,
    action  TEXT NOT NULL,   -- e.g. hit.resolved, key.revoked, hits.listed
    target  TEXT NOT NULL,   -- the ids it concerns
    detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_by_actor ON audit_log (actor, seq);
CREATE INDEX audit_by_action ON audit_log (action, seq);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
