-- Brings analytics tables created before 2026-11-26 to the current schema (handlers/database.py).
--
--   * A rollup group is keyed by dimensions_key, the SHA-256 of its canonical dimensions JSON, and the
--     JSON itself becomes unbounded text: a varchar(2048) key refused valid records' long dimensions.
--   * The ledger names a loaded object by the SHA-256 of its bytes (content_sha256) instead of its
--     ETag, which under SSE-KMS is not a hash of the content. Rows loaded before the migration keep
--     their ETag in that column, so an object loaded before it and delivered again after it is loaded
--     a second time: drain the analytics failure queue before migrating.
--
-- Run once, with the analytics function stopped (reserved concurrency 0), e.g.
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f migrations/postgresql/0001_content_keys.sql
-- The analytics function refuses to load into tables that lack these columns, naming this file.
BEGIN;

ALTER TABLE pipeline_rollup_groups ADD COLUMN dimensions_key varchar(64);
UPDATE pipeline_rollup_groups SET dimensions_key = encode(sha256(convert_to(dimensions, 'UTF8')), 'hex');
ALTER TABLE pipeline_rollup_groups ALTER COLUMN dimensions_key SET NOT NULL;
ALTER TABLE pipeline_rollup_groups DROP CONSTRAINT pipeline_rollup_groups_pkey;
ALTER TABLE pipeline_rollup_groups ADD PRIMARY KEY (window_size, window_start, dimensions_key);
ALTER TABLE pipeline_rollup_groups ALTER COLUMN dimensions TYPE text;

ALTER TABLE pipeline_rollup_metrics ADD COLUMN dimensions_key varchar(64);
UPDATE pipeline_rollup_metrics SET dimensions_key = encode(sha256(convert_to(dimensions, 'UTF8')), 'hex');
ALTER TABLE pipeline_rollup_metrics ALTER COLUMN dimensions_key SET NOT NULL;
ALTER TABLE pipeline_rollup_metrics DROP CONSTRAINT pipeline_rollup_metrics_pkey;
ALTER TABLE pipeline_rollup_metrics ADD PRIMARY KEY (window_size, window_start, dimensions_key, metric);
ALTER TABLE pipeline_rollup_metrics ALTER COLUMN dimensions TYPE text;

ALTER TABLE pipeline_ledger RENAME COLUMN etag TO content_sha256;
ALTER TABLE pipeline_ledger ALTER COLUMN content_sha256 TYPE varchar(64);

COMMIT;
