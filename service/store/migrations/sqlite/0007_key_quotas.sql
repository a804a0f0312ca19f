-- A key's own hourly quotas, when it needs other ones than the server's
-- --max-cases-per-hour and --max-hashes-per-hour: the web tier's submitter key, shared by
-- every victim who uses the public page, gets headroom (docs/SECURITY.md). NULL: the
-- server's setting.
ALTER TABLE api_keys ADD COLUMN cases_per_hour INTEGER;
ALTER TABLE api_keys ADD COLUMN hashes_per_hour INTEGER;
