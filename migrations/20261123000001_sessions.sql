-- Server-side sessions. The id is the SHA-256 of the cookie's session key, so a copy of the
-- database cannot be replayed as cookies.
CREATE TABLE IF NOT EXISTS sessions (
    id          TEXT PRIMARY KEY NOT NULL,
    state       TEXT NOT NULL,
    user_sub    TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions (expires_at);
CREATE INDEX IF NOT EXISTS sessions_user_sub ON sessions (user_sub);
