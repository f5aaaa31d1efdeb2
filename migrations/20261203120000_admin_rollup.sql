-- The admin page at scale (issue 15): an hourly rollup of the audit log, kept by the same
-- write that adds a row, so the chart reads at most 7 x 24 x events rows instead of scanning
-- the log; and a partial index that serves "newest signed-in sessions" without a sort.
CREATE TABLE IF NOT EXISTS audit_hourly (
    event   TEXT NOT NULL,
    hour    BIGINT NOT NULL,
    count   BIGINT NOT NULL,
    PRIMARY KEY (event, hour)
);
INSERT INTO audit_hourly (event, hour, count)
    SELECT event, (at / 3600) * 3600, COUNT(*) FROM audit_log GROUP BY event, (at / 3600) * 3600;
CREATE INDEX IF NOT EXISTS sessions_signed_in_updated_at ON sessions (updated_at) WHERE user_sub IS NOT NULL;
