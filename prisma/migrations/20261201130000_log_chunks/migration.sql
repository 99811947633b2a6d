-- A running job's log as chunks (a few hundred lines, at most about 64 KiB each) instead of a
-- row per line; a finished job's log lives in the blob store (gzip + line index) and its chunks
-- are deleted. See storage/log-store.ts.

-- AlterTable
ALTER TABLE "jobs" ADD COLUMN     "log_archived_at" TIMESTAMPTZ(3),
ADD COLUMN     "log_line_count" INTEGER,
ADD COLUMN     "log_expired_at" TIMESTAMPTZ(3),
ADD COLUMN     "artifacts_expired_at" TIMESTAMPTZ(3);

-- CreateTable
CREATE TABLE "log_chunks" (
    "job_id" UUID NOT NULL,
    "first_seq" INTEGER NOT NULL,
    "last_seq" INTEGER NOT NULL,
    "data" BYTEA NOT NULL,
    "offsets" INTEGER[],
    "streams" TEXT NOT NULL,
    "times" BIGINT[],

    CONSTRAINT "log_chunks_pkey" PRIMARY KEY ("job_id","first_seq")
);

-- CreateIndex
CREATE UNIQUE INDEX "log_chunks_job_id_last_seq_key" ON "log_chunks"("job_id", "last_seq");

-- AddForeignKey
ALTER TABLE "log_chunks" ADD CONSTRAINT "log_chunks_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Existing lines become chunks of 256 lines: each line's text and a newline, the byte offset
-- where each line starts, one letter per line for its stream (storage/log-store.ts STREAM_CODES),
-- and each line's time in epoch milliseconds.
INSERT INTO "log_chunks" ("job_id", "first_seq", "last_seq", "data", "offsets", "streams", "times")
SELECT "job_id", min("seq"), max("seq"),
       convert_to(string_agg("text" || E'\n', '' ORDER BY "seq"), 'UTF8'),
       array_agg("off" ORDER BY "seq"),
       string_agg(CASE "stream" WHEN 'stdout' THEN 'o' WHEN 'stderr' THEN 'e' WHEN 'system' THEN 's'
                                WHEN 'console' THEN 'c' ELSE 'o' END, '' ORDER BY "seq"),
       array_agg((extract(epoch FROM "time") * 1000)::bigint ORDER BY "seq")
FROM (
  SELECT *, (sum(octet_length("text") + 1) OVER w - (octet_length("text") + 1))::int AS "off"
  FROM "log_lines"
  WINDOW w AS (PARTITION BY "job_id", ("seq" - 1) / 256 ORDER BY "seq")
) l
GROUP BY "job_id", ("seq" - 1) / 256;

-- DropTable
DROP TABLE "log_lines";
