-- 0026: Claude's one-line reading of an approval ticket's case (its opinion, shown beside the facts the desk computes).
ALTER TABLE tickets ADD COLUMN copilot_view TEXT;
