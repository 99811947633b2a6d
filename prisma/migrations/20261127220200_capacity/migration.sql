-- CreateTable
CREATE TABLE "hosts" (
    "id" TEXT NOT NULL,
    "task_queue" TEXT NOT NULL,
    "labels" TEXT[],
    "max_machines" INTEGER NOT NULL,
    "started_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_seen" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "stopped_at" TIMESTAMPTZ(3),

    CONSTRAINT "hosts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "leases" (
    "job_id" UUID NOT NULL,
    "seq" SERIAL NOT NULL,
    "label" TEXT NOT NULL,
    "requested_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "host_id" TEXT,
    "granted_at" TIMESTAMPTZ(3),
    "released_at" TIMESTAMPTZ(3),
    "release_reason" TEXT,

    CONSTRAINT "leases_pkey" PRIMARY KEY ("job_id")
);

-- CreateIndex
CREATE UNIQUE INDEX "leases_seq_key" ON "leases"("seq");

-- CreateIndex
CREATE INDEX "leases_released_at_label_idx" ON "leases"("released_at", "label");

-- AddForeignKey
ALTER TABLE "leases" ADD CONSTRAINT "leases_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;
