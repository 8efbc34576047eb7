-- 0012: catch-up after a start: operators' thread messages already handled (so none is handled twice), and customers' turns by Discord id per customer (the newest one seen is where reading resumes).
CREATE TABLE thread_messages_seen (
    message_id  INTEGER PRIMARY KEY,
    thread_id   INTEGER NOT NULL,
    seen_at     REAL NOT NULL
);
CREATE INDEX thread_messages_seen_thread ON thread_messages_seen(thread_id, message_id);
CREATE INDEX turns_customer_message ON turns(customer_id, discord_message_id) WHERE discord_message_id IS NOT NULL;
