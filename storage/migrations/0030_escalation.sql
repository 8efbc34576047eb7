-- 0030: escalation chains: how many of [desk] escalation's steps a ticket has reached (each mentions its role once).
ALTER TABLE tickets ADD COLUMN escalation_level INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN escalated_at REAL;
