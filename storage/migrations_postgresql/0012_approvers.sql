-- 0012 (SQLite 0029): two-person approval: how many distinct operators must approve a ticket, and who has approved which details so far.
ALTER TABLE tickets ADD COLUMN approvers_needed INTEGER NOT NULL DEFAULT 1;
CREATE TABLE ticket_approvals (
    ticket_id BIGINT NOT NULL REFERENCES tickets(id),
    operator_id BIGINT NOT NULL,
    operator_name TEXT NOT NULL,
    params TEXT NOT NULL,
    approved_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (ticket_id, operator_id)
);
