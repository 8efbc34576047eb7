-- 0004 (SQLite 0021): replacing an authenticator needs a code from the current one first; the DM carrying a setup's key is deleted when the setup ends.
ALTER TABLE mfa_secrets ADD COLUMN replace_asked_at DOUBLE PRECISION;
ALTER TABLE mfa_secrets ADD COLUMN replace_verified_at DOUBLE PRECISION;
ALTER TABLE mfa_secrets ADD COLUMN setup_expires_at DOUBLE PRECISION;
ALTER TABLE mfa_secrets ADD COLUMN setup_channel_id BIGINT;
ALTER TABLE mfa_secrets ADD COLUMN setup_message_id BIGINT;
