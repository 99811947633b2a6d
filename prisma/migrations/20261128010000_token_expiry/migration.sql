-- AlterTable
ALTER TABLE "jobs" ADD COLUMN     "token_expires_at" TIMESTAMPTZ(3);
