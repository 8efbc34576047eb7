-- 0029: two-person approval: how many distinct operators must approve a ticket, and who has approved which details so far.
ALTER TABLE tickets ADD COLUMN approvers_needed INTEGER NOT NULL DEFAULT 1;
CREATE TABLE ticket_approvals (
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    operator_id INTEGER NOT NULL,
    operator_name TEXT NOT NULL,
    params TEXT NOT NULL,
    approved_at REAL NOT NULL,
    PRIMARY KEY (ticket_id, operator_id)
);
