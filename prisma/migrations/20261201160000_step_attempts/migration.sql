-- Steps are kept per machine attempt: a job retried on a fresh machine shows the steps of every
-- attempt (attempt 1's interrupted step next to attempt 2's), where attempt 2's used to replace
-- them. Steps stored before this belong to their job's last attempt, the only one kept until now.

-- AlterTable
ALTER TABLE "job_steps" ADD COLUMN "attempt" INTEGER NOT NULL DEFAULT 1;
UPDATE "job_steps" s SET "attempt" = j."attempt" FROM "jobs" j WHERE j."id" = s."job_id" AND j."attempt" > 0;
ALTER TABLE "job_steps" ALTER COLUMN "attempt" DROP DEFAULT;
ALTER TABLE "job_steps" DROP CONSTRAINT "job_steps_pkey";
ALTER TABLE "job_steps" ADD CONSTRAINT "job_steps_pkey" PRIMARY KEY ("job_id", "attempt", "step_index");

-- CreateTable
CREATE TABLE "lost_attempts" (
    "job_id" UUID NOT NULL,
    "attempt" INTEGER NOT NULL,
    "message" TEXT NOT NULL,
    "log_seq" INTEGER NOT NULL,
    "lost_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "lost_attempts_pkey" PRIMARY KEY ("job_id","attempt")
);

-- AddForeignKey
ALTER TABLE "lost_attempts" ADD CONSTRAINT "lost_attempts_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;
