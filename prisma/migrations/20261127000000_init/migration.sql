-- CreateEnum
CREATE TYPE "job_state" AS ENUM ('queued', 'provisioning', 'running', 'success', 'failure', 'error', 'cancelled');

-- CreateTable
CREATE TABLE "jobs" (
    "id" UUID NOT NULL,
    "workflow_id" TEXT NOT NULL,
    "source" TEXT NOT NULL DEFAULT 'manual',
    "repo_url" TEXT NOT NULL,
    "commit_sha" TEXT NOT NULL,
    "ref" TEXT,
    "label" TEXT NOT NULL DEFAULT 'local',
    "state" "job_state" NOT NULL DEFAULT 'queued',
    "exit_code" INTEGER,
    "message" TEXT,
    "attempt" INTEGER NOT NULL DEFAULT 0,
    "token_hash" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "started_at" TIMESTAMPTZ(3),
    "finished_at" TIMESTAMPTZ(3),

    CONSTRAINT "jobs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "log_lines" (
    "job_id" UUID NOT NULL,
    "seq" INTEGER NOT NULL,
    "stream" TEXT NOT NULL,
    "text" TEXT NOT NULL,
    "time" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "log_lines_pkey" PRIMARY KEY ("job_id","seq")
);

-- CreateTable
CREATE TABLE "vms" (
    "id" TEXT NOT NULL,
    "job_id" UUID NOT NULL,
    "provider" TEXT NOT NULL,
    "host" TEXT NOT NULL,
    "attempt" INTEGER NOT NULL,
    "handle" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "destroyed_at" TIMESTAMPTZ(3),

    CONSTRAINT "vms_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "jobs_workflow_id_key" ON "jobs"("workflow_id");

-- CreateIndex
CREATE UNIQUE INDEX "jobs_token_hash_key" ON "jobs"("token_hash");

-- CreateIndex
CREATE INDEX "jobs_created_at_idx" ON "jobs"("created_at");

-- CreateIndex
CREATE INDEX "vms_job_id_idx" ON "vms"("job_id");

-- AddForeignKey
ALTER TABLE "log_lines" ADD CONSTRAINT "log_lines_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "vms" ADD CONSTRAINT "vms_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;
