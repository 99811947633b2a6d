-- CreateTable
CREATE TABLE "pipelines" (
    "id" UUID NOT NULL,
    "workflow_id" TEXT NOT NULL,
    "source" TEXT NOT NULL DEFAULT 'manual',
    "event" TEXT NOT NULL DEFAULT 'manual',
    "repo_url" TEXT NOT NULL,
    "commit_sha" TEXT NOT NULL,
    "ref" TEXT,
    "state" TEXT NOT NULL DEFAULT 'running',
    "message" TEXT,
    "rerun_of" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMPTZ(3),

    CONSTRAINT "pipelines_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "pipeline_jobs" (
    "pipeline_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "needs" TEXT[],
    "state" TEXT NOT NULL DEFAULT 'waiting',
    "job_id" UUID,
    "message" TEXT,
    "position" INTEGER NOT NULL,

    CONSTRAINT "pipeline_jobs_pkey" PRIMARY KEY ("pipeline_id","name")
);

-- CreateIndex
CREATE UNIQUE INDEX "pipelines_workflow_id_key" ON "pipelines"("workflow_id");

-- CreateIndex
CREATE INDEX "pipelines_repo_url_ref_state_idx" ON "pipelines"("repo_url", "ref", "state");

-- CreateIndex
CREATE INDEX "pipelines_created_at_idx" ON "pipelines"("created_at");

-- CreateIndex
CREATE INDEX "pipeline_jobs_job_id_idx" ON "pipeline_jobs"("job_id");

-- AddForeignKey
ALTER TABLE "pipeline_jobs" ADD CONSTRAINT "pipeline_jobs_pipeline_id_fkey" FOREIGN KEY ("pipeline_id") REFERENCES "pipelines"("id") ON DELETE CASCADE ON UPDATE CASCADE;
