-- The installation's identity: one row, made once when this database is first migrated. Every
-- machine is tagged with it, and broker queues are named after it, so installations sharing a
-- host or a broker never touch each other's work. 12 hex digits: short enough for VM and
-- folder names, random enough that two installations never meet on one id.
CREATE TABLE "installation" (
    "id" TEXT NOT NULL,
    "singleton" BOOLEAN NOT NULL DEFAULT true,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "installation_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "installation_singleton_key" ON "installation"("singleton");

INSERT INTO "installation" ("id") VALUES (substr(md5(random()::text || clock_timestamp()::text), 1, 12));
