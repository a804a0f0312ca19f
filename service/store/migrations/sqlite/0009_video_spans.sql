-- Videos (issue 17): which seconds of a video matched each entry of a hit, of the upload
-- and of the listed video, so a moderator can look at that part; NULL for photos and
-- exact hashes. (vpdq entry values are variable-length BLOBs, which SQLite indexes as is.)
ALTER TABLE hit_matches ADD COLUMN upload_start REAL;
ALTER TABLE hit_matches ADD COLUMN upload_end REAL;
ALTER TABLE hit_matches ADD COLUMN listed_start REAL;
ALTER TABLE hit_matches ADD COLUMN listed_end REAL;
