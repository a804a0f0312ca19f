-- Which part of an upload matched each entry of a hit (service.domain.MatchPart: whole,
-- dihedral, inner, strip...), and whether the hit's confirmation counted for that entry
-- (whole parts always; partial ones only when the moderator chose so). Only agreed
-- matches vet entries (docs/SECURITY.md, "What a confirmation vets").
ALTER TABLE hit_matches ADD COLUMN part TEXT NOT NULL DEFAULT 'whole';
ALTER TABLE hit_matches ADD COLUMN agreed INTEGER NOT NULL DEFAULT 0;
-- Hits confirmed before parts were recorded agreed to every entry they matched.
UPDATE hit_matches SET agreed = 1
    WHERE hit_id IN (SELECT hit_id FROM hits WHERE state = 'confirmed');
