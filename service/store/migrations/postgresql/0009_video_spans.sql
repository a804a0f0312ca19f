-- Videos (issue 17): which seconds of a video matched each entry of a hit, of the upload
-- and of the listed video, so a moderator can look at that part; NULL for photos and
-- exact hashes.
ALTER TABLE hit_matches ADD COLUMN upload_start DOUBLE PRECISION;
ALTER TABLE hit_matches ADD COLUMN upload_end DOUBLE PRECISION;
ALTER TABLE hit_matches ADD COLUMN listed_start DOUBLE PRECISION;
ALTER TABLE hit_matches ADD COLUMN listed_end DOUBLE PRECISION;
-- A vpdq value holds one 37-byte record per second of video (133 KB for an hour), past
-- what a B-tree entry may hold (about 2.7 KB): imported entries are kept unique by the
-- SHA-256 of their value instead of the value itself.
DROP INDEX entries_imported;
CREATE UNIQUE INDEX entries_imported ON entries (algorithm, sha256(value)) WHERE case_id IS NULL;
