-- Warm pools: machines booted per host and label before any job needs them (docs/qemu.md,
-- "Warm pools"). A row lives from the pool's decision to boot a machine until the machine is
-- destroyed, or until it was claimed and its job's `vms` row took over.
--
-- `token_hash`: the pool token's hash. The token lets the runner in the machine do one thing,
-- wait for an assignment (WaitForAssignment); it is revoked (NULL) when the assignment is
-- delivered. `public_key`: the runner's X25519 key from its wait call; `assignment` is the job
-- file sealed to it (model/sealed-box.ts), so the database never holds a job token or secret
-- in the clear, and delivery clears it.

-- CreateTable
CREATE TABLE "pool_machines" (
    "id" TEXT NOT NULL,
    "host_id" TEXT NOT NULL,
    "label" TEXT NOT NULL,
    "provider" TEXT NOT NULL,
    "handle" JSONB NOT NULL,
    "token_hash" TEXT,
    "state" TEXT NOT NULL DEFAULT 'booting',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "idle_since" TIMESTAMPTZ(3),
    "last_contact" TIMESTAMPTZ(3),
    "public_key" TEXT,
    "reserved_job_id" UUID,
    "claimed_job_id" UUID,
    "claimed_attempt" INTEGER,
    "claimed_at" TIMESTAMPTZ(3),
    "assignment" TEXT,
    "delivered_at" TIMESTAMPTZ(3),

    CONSTRAINT "pool_machines_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "pool_machines_token_hash_key" ON "pool_machines"("token_hash");

-- CreateIndex
CREATE INDEX "pool_machines_host_id_label_idx" ON "pool_machines"("host_id", "label");
