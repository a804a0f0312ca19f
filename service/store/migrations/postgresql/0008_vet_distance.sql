-- The smallest distance at which a confirmation a moderator agreed to matched a vetted
-- entry: the entry then BLOCKs only uploads within the threshold less that distance, so
-- every BLOCK lies within the threshold of an upload a moderator saw (docs/SECURITY.md,
-- "What a confirmation vets"). 0 for entries vetted by an import or before this column.
ALTER TABLE entries ADD COLUMN vet_distance INTEGER NOT NULL DEFAULT 0;
