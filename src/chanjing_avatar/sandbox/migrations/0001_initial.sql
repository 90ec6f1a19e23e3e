-- The sandbox's records (the same as the embedded SQLite store's) and the rate-limit log.
CREATE TABLE apps (app_id TEXT PRIMARY KEY, secret_key TEXT NOT NULL);
CREATE TABLE tokens (
    app_id TEXT PRIMARY KEY, token TEXT NOT NULL UNIQUE, expire_at DOUBLE PRECISION NOT NULL);
CREATE TABLE files (
    id TEXT PRIMARY KEY, app_id TEXT NOT NULL, service TEXT NOT NULL, name TEXT NOT NULL,
    mime_type TEXT NOT NULL, blob_key TEXT NOT NULL, create_time BIGINT NOT NULL,
    bytes BIGINT NOT NULL DEFAULT 0, uploaded_at DOUBLE PRECISION, checked_status INTEGER,
    msg TEXT NOT NULL DEFAULT '', forced_status INTEGER);
CREATE TABLE tasks (
    seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE, app_id TEXT NOT NULL,
    create_time BIGINT NOT NULL, params JSONB NOT NULL, status INTEGER NOT NULL,
    progress INTEGER NOT NULL, msg TEXT NOT NULL, duration_ms BIGINT NOT NULL,
    callback TEXT NOT NULL, fail_msg TEXT NOT NULL, seed BIGINT NOT NULL,
    finished_at DOUBLE PRECISION, attempt INTEGER NOT NULL DEFAULT 0);
CREATE INDEX tasks_by_app ON tasks (app_id, seq);
CREATE INDEX tasks_unfinished ON tasks (seq) WHERE status IN (0, 10);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE callbacks (
    task_id TEXT PRIMARY KEY, url TEXT NOT NULL, payload JSONB NOT NULL,
    attempt INTEGER NOT NULL, due_at DOUBLE PRECISION NOT NULL);
-- One row per counted request: a sliding window shared by every API replica.
CREATE TABLE rate_hits (
    app_id TEXT NOT NULL, bucket TEXT NOT NULL, at TIMESTAMPTZ NOT NULL);
CREATE INDEX rate_hits_by_key ON rate_hits (app_id, bucket, at);
