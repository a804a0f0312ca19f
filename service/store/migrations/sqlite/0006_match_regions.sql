-- Where in the upload the part that matched each entry of a hit is (issue 18: a collage
-- tile, a screenshot's photo, an upload turned back by a small angle), in words a
-- moderator reads; empty for the whole upload and its strips.
ALTER TABLE hit_matches ADD COLUMN region TEXT NOT NULL DEFAULT '';
