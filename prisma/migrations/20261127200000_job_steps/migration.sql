-- CreateTable
CREATE TABLE "job_steps" (
    "job_id" UUID NOT NULL,
    "step_index" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "outcome" TEXT NOT NULL,
    "exit_code" INTEGER,
    "continue_on_error" BOOLEAN NOT NULL DEFAULT false,
    "started_at" TIMESTAMPTZ(3),
    "duration_ms" INTEGER,
    "first_seq" INTEGER,
    "last_seq" INTEGER,

    CONSTRAINT "job_steps_pkey" PRIMARY KEY ("job_id","step_index")
);

-- AddForeignKey
ALTER TABLE "job_steps" ADD CONSTRAINT "job_steps_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;
