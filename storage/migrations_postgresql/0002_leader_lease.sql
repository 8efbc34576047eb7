-- 0002: the standby's lease (PostgreSQL only): one row; its holder leads, its epoch fences a stale leader's writes.
CREATE TABLE leader_lease (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    epoch       BIGINT NOT NULL,
    expires_at  DOUBLE PRECISION NOT NULL,  -- database time, epoch seconds: no two hosts' clocks compared
    acquired_at DOUBLE PRECISION NOT NULL,
    renewed_at  DOUBLE PRECISION NOT NULL
);
