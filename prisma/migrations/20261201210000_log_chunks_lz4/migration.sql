-- A running job's chunks are rewritten as they fill and deleted when the job ends: compress them
-- with lz4, cheaper in CPU than the default pglz (npm run bench:log-store compares both). Only
-- new values are affected; older ones stay readable as they are. A server built without lz4
-- keeps pglz. Prisma does not model column compression, so schema.prisma is unchanged.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
    ALTER TABLE "log_chunks" ALTER COLUMN "data" SET COMPRESSION lz4,
      ALTER COLUMN "offsets" SET COMPRESSION lz4,
      ALTER COLUMN "times" SET COMPRESSION lz4;
  END IF;
END
$$;
