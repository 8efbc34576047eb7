-- 0011 (SQLite 0028): an agent's question may ask for a typed answer (a form built from its answer_schema); the answer's data is kept beside its words.
ALTER TABLE tickets ADD COLUMN answer_schema TEXT;
ALTER TABLE tickets ADD COLUMN answer_data TEXT;
