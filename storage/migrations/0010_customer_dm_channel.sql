-- 0010: the customer's DM channel id, from their messages: a send is then one request (no user look-up, no DM opened).
ALTER TABLE customers ADD COLUMN dm_channel_id INTEGER;
