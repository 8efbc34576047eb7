-- 0007: count audit events of one kind in a period (e.g. delivery stalls for /stats) without a scan.
CREATE INDEX audit_action_at ON audit (action, at);
