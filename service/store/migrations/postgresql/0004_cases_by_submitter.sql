-- The hourly case quota counts a submitter's recent cases on every SubmitCase
-- (service/limits.py): an index keeps that count from scanning every case.
CREATE INDEX cases_by_submitter ON cases (submitted_by, created_at);
