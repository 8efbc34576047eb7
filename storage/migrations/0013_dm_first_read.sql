-- 0013: whether a customer's DM channel was ever read back after a start: the first read goes back [delivery] catch_up_hours, so a first DM sent while the bot was down is found once the channel is known.
ALTER TABLE customers ADD COLUMN dm_read_back INTEGER NOT NULL DEFAULT 0;
