-- Brings analytics tables of an older version to the current schema (handlers/database.py). Safe to run
-- again: each step is skipped or repeated harmlessly on tables it has already brought over.
--
--   * A rollup group is keyed by dimensions_key, the SHA-256 of its canonical dimensions JSON, and the
--     JSON itself becomes unbounded text: a varchar(2048) key refused valid records' long dimensions.
--   * The ledger names a loaded object by the SHA-256 of its bytes (content_sha256) instead of its
--     ETag, which under SSE-KMS is not a hash of the content. Rows loaded before the migration keep
--     their ETag in that column. So an object loaded before the upgrade and delivered again after it
--     (an at-least-once duplicate that spans the upgrade) is loaded a second time. Events in the
--     failure queue were never loaded, so redriving them after the migration is safe.
--
-- Order: `pulumi up` the new version (analytics then refuses the old tables with a ConfigError naming
-- this file, and its events wait in the failure queue), stop analytics (reserved concurrency 0), run
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f migrations/postgresql/0001_content_keys.sql
-- restore the concurrency, then redrive the analytics failure queue.
BEGIN;

ALTER TABLE pipeline_rollup_groups ADD COLUMN IF NOT EXISTS dimensions_key varchar(64);
UPDATE pipeline_rollup_groups SET dimensions_key = encode(sha256(convert_to(dimensions, 'UTF8')), 'hex')
    WHERE dimensions_key IS NULL;
ALTER TABLE pipeline_rollup_groups ALTER COLUMN dimensions_key SET NOT NULL;
ALTER TABLE pipeline_rollup_groups DROP CONSTRAINT pipeline_rollup_groups_pkey;
ALTER TABLE pipeline_rollup_groups ADD PRIMARY KEY (window_size, window_start, dimensions_key);
ALTER TABLE pipeline_rollup_groups ALTER COLUMN dimensions TYPE text;

ALTER TABLE pipeline_rollup_metrics ADD COLUMN IF NOT EXISTS dimensions_key varchar(64);
UPDATE pipeline_rollup_metrics SET dimensions_key = encode(sha256(convert_to(dimensions, 'UTF8')), 'hex')
    WHERE dimensions_key IS NULL;
ALTER TABLE pipeline_rollup_metrics ALTER COLUMN dimensions_key SET NOT NULL;
ALTER TABLE pipeline_rollup_metrics DROP CONSTRAINT pipeline_rollup_metrics_pkey;
ALTER TABLE pipeline_rollup_metrics ADD PRIMARY KEY (window_size, window_start, dimensions_key, metric);
ALTER TABLE pipeline_rollup_metrics ALTER COLUMN dimensions TYPE text;

DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'pipeline_ledger' AND column_name = 'etag'
    ) THEN
        ALTER TABLE pipeline_ledger RENAME COLUMN etag TO content_sha256;
    END IF;
END
$$;
ALTER TABLE pipeline_ledger ALTER COLUMN content_sha256 TYPE varchar(64);

COMMIT;
