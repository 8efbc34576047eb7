-- 0006: a covering index so the escalation summary reads tickets from the index alone (bench/summary.py).
CREATE INDEX tickets_summary ON tickets(created_at, kind, priority, status, source, action_name, first_response_at,
                                        timed_out_at, conversation_id);
