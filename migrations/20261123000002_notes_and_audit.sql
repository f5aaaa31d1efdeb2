-- Notes and the audit log. Portable types only (TEXT ids, BIGINT unix seconds) so the same
-- migration can run on PostgreSQL later.
CREATE TABLE IF NOT EXISTS notes (
    id           TEXT PRIMARY KEY NOT NULL,
    title        TEXT NOT NULL,
    body         TEXT NOT NULL,
    author_id    TEXT NOT NULL,
    author_name  TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS notes_created_at ON notes (created_at);

CREATE TABLE IF NOT EXISTS audit_log (
    id           TEXT PRIMARY KEY NOT NULL,
    at           BIGINT NOT NULL,
    event        TEXT NOT NULL,
    user_id      TEXT,
    user_name    TEXT,
    client_ip    TEXT,
    request_id   TEXT,
    detail       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);
CREATE INDEX IF NOT EXISTS audit_log_event_at ON audit_log (event, at);
