-- AlterTable
ALTER TABLE "jobs" ADD COLUMN     "runner_contact_at" TIMESTAMPTZ(3);
