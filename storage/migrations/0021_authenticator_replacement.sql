-- 0021: replacing an authenticator needs a code from the current one first; the DM carrying a setup's key is deleted when the setup ends.
ALTER TABLE mfa_secrets ADD COLUMN replace_asked_at REAL;     -- an enrolled customer asked for a new setup: their next code is checked against the current one
ALTER TABLE mfa_secrets ADD COLUMN replace_verified_at REAL;  -- that code was right: the pending setup may replace the current one
ALTER TABLE mfa_secrets ADD COLUMN setup_expires_at REAL;     -- a pending setup not confirmed by then is abandoned
ALTER TABLE mfa_secrets ADD COLUMN setup_channel_id INTEGER;  -- the DM that carries the pending setup's key ...
ALTER TABLE mfa_secrets ADD COLUMN setup_message_id INTEGER;  -- ... deleted once the setup is confirmed, abandoned or reset
