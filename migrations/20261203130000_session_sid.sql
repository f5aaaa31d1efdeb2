-- Single sign-out (issue 12): the identity provider's session id of each signed-in session,
-- so a back- or front-channel logout naming a `sid` finds its sessions without a scan.
ALTER TABLE sessions ADD COLUMN sid TEXT;
CREATE INDEX IF NOT EXISTS sessions_sid ON sessions (sid);
