/**
 * Warm pools with real VMs (QEMU under TCG, from the image infra/images/build.sh made): the same
 * pool logic tests/integration/capacity/pools.test.ts covers with the local provider, here with
 * what only a VM has: the pool VM booted with /etc/solstice/pool.yaml and no job, its runner
 * waiting under restrict=on networking, and a host-folder repository reached at the claim
 * through the VM's repository forward (docs/qemu.md, "Warm pools").
 *
 * Every boot costs 60-80 s here (more under load), so the tests share one host and run in order,
 * each starting from what the one before left: four boots in all (the first pool VM, a cold job
 * and the refill side by side, the replacement of a killed one).
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PoolStore, type PoolMachineRow } from '../../../capacity/pool-store';
import { machineTag } from '../../../provisioning/machine-name';
import { taggedPids, tagsWithPrefix } from '../../../provisioning/process-tree';
import { readInstallationId } from '../../../storage/installation';
import { makeRepo } from '../../support/git-repo';
import {
  SECRET_IN_THE_CLEAR,
  SECRET_LOOK_CLEAN,
  SECRET_LOOKS,
  secretLookScript,
  writeJobSecrets,
  type SecretLook,
} from '../../support/secret-isolation';
import { startHarness, type Harness } from '../../support/harness';
import { waitFor } from '../../support/wait';
import { builtImage, qemuProcessesOf, writeImageMap } from '../../support/vm-image';

const LABEL = 'debian-12';
const BOOT_MS = 8 * 60_000;
// Generous: a TCG guest on a shared 2-core machine can stall for seconds.
const LIVENESS = '20s';
const WARM = new RegExp(`^warm VM from pool ${LABEL}, idle \\d+ s$`);

let h: Harness;
let imageMap: string;
let secretsDir: string;
let worker: ChildProcess | undefined;
/** The pool VM the jobs left idle, which the later tests take over. */
let survivor: PoolMachineRow;

const workerEnv = {
  SOLSTICE_POOLS: `${LABEL}=1`,
  SOLSTICE_MACHINE_LIVENESS: LIVENESS,
  SOLSTICE_BOOT_TIMEOUT: '10m',
  SOLSTICE_JOB_TIMEOUT: '10m',
  // The claimed VM's slot, a cold job's and the refill's.
  SOLSTICE_HOST_MAX_MACHINES: '3',
};

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) =>
    child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve()),
  );
}

async function poolRows(): Promise<PoolMachineRow[]> {
  return new PoolStore(h.db).list(h.cfg.hostId);
}

/** Pool VMs whose runner is waiting right now. */
async function idle(): Promise<PoolMachineRow[]> {
  return (await poolRows()).filter((m) => m.state === 'idle' && m.silentMs !== null && m.silentMs < 10_000);
}

async function tagOf(machineId: string): Promise<string> {
  return machineTag({ installationId: await readInstallationId(h.db), hostId: h.cfg.hostId }, machineId);
}

async function logTexts(jobId: string): Promise<string[]> {
  return (await h.jobs.logLinesAfter(jobId, 0, 5000)).map((l) => l.text);
}

beforeAll(async () => {
  imageMap = writeImageMap(builtImage());
  secretsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-qemu-pool-'));
  const secretsFile = path.join(secretsDir, 'secrets.yaml');
  writeJobSecrets(secretsFile);
  h = await startHarness({
    provider: 'qemu',
    imageMap,
    qemuAccel: 'tcg',
    bootTimeoutMs: '10m',
    jobTimeoutMs: '10m',
    machineLivenessMs: LIVENESS,
    pools: `${LABEL}=1`,
    secretsFile,
  });
  // A `solstice worker` process, so a test can SIGKILL it.
  worker = h.spawnWorker(workerEnv);
});

afterAll(async () => {
  if (worker) {
    worker.kill('SIGKILL');
    await exited(worker);
  }
  // Idle pool VMs outlive their worker by design (a restart adopts them): the test ends them.
  if (h)
    for (const pids of (await tagsWithPrefix(await tagOf(''))).values())
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
  await h?.close();
  if (imageMap) fs.rmSync(imageMap, { force: true });
  if (secretsDir) fs.rmSync(secretsDir, { recursive: true, force: true });
});

/** A job that names one secret and reports, from inside its VM, what it can see. */
function lookingJob(look: SecretLook) {
  return makeRepo({
    '.solstice/workflow.kdl': `
      job "look" {
        runs-on "${LABEL}"
        secrets "${look.mine}"
        step "look" run="sh ./look.sh"
      }
    `,
    'look.sh': [
      `echo "on $(hostname)"`,
      ...secretLookScript(look, { root: '', searched: ['etc', 'root', 'tmp', 'var/lib/cloud', 'home'] }),
      // Only this job's token is in the VM: its hash, which the test compares with the job's.
      `echo "token-hash $(sed -n 's/^token: *//p' /etc/solstice/job.yaml | tr -d "\\"'" | tr -d '\\n' | sha256sum | cut -c1-64)"`,
      // Time for the test to read the job's token hash before the job ends revokes it.
      'sleep 15',
    ].join('\n'),
  });
}

test(
  'with min_idle 1: a job starts warm in the pool VM and fetches its host-folder repository, one back to back boots cold, both succeed, the pool refills at the claim, and neither job sees the other’s token or secrets',
  async () => {
    await waitFor(async () => (await idle()).length === 1, BOOT_MS, 'an idle pool VM');
    const [first] = await idle();
    expect(first.claimedJobId).toBeNull();

    const claimedAt = Date.now();
    const jobs = await Promise.all(
      SECRET_LOOKS.map(async (look) => {
        const repo = lookingJob(look);
        const started = await h.startPipeline(repo.dir, repo.sha);
        let jobId: string | undefined;
        await waitFor(
          async () => {
            jobId = (await h.pipelines.listJobs(started.pipelineId))[0]?.jobId ?? undefined;
            if (jobId !== undefined) return true;
            // A pipeline that ended without its job (planning failed) says why, not a timeout.
            const p = await h.pipelines.getPipeline(started.pipelineId);
            if (p && p.state !== 'running')
              throw new Error(`pipeline ended ${p.state} before its job: ${p.message}`);
            return false;
          },
          // Planning fetches the repository and parses the file while the pool VM and the
          // worker share two cores with the rest of the suite.
          3 * 60_000,
          'the pipeline’s job',
        );
        return { ...started, jobId: jobId as string };
      }),
    );

    // Each job's token hash as its VM printed it, read while the job still runs (its end revokes it).
    const seen = new Map<string, string>();
    await waitFor(
      async () => {
        for (const j of jobs) {
          if (seen.has(j.jobId)) continue;
          const line = (await logTexts(j.jobId)).find((t) => t.startsWith('token-hash '));
          if (!line) continue;
          const row = await h.db.job.findUnique({ where: { id: j.jobId }, select: { tokenHash: true } });
          expect(line).toBe(`token-hash ${row?.tokenHash}`);
          seen.set(j.jobId, line);
        }
        return seen.size === jobs.length;
      },
      BOOT_MS,
      'both jobs printing their token hash',
    );
    expect(new Set(seen.values()).size).toBe(2);

    // Refilled right after the claim: a new pool VM was booted then, not at a later look.
    const rows = await poolRows();
    const refill = rows.find((m) => m.id !== first.id);
    expect(refill).toBeDefined();
    expect((refill as PoolMachineRow).createdAt.getTime()).toBeLessThan(claimedAt + 30_000);

    const firsts: string[] = [];
    for (const j of jobs) {
      const pipeline = await h.pipelineResult(j.workflowId, j.pipelineId);
      const texts = await logTexts(j.jobId);
      expect({ state: pipeline.state, log: texts }).toMatchObject({ state: 'success' });
      firsts.push(texts[0]);
      for (const line of SECRET_LOOK_CLEAN) expect(texts).toContain(line);
      expect(texts).not.toContain('LEAK');
    }
    expect(firsts.filter((t) => WARM.test(t))).toHaveLength(1);
    expect(firsts.filter((t) => t === `cold boot: no idle VM in pool ${LABEL}`)).toHaveLength(1);
    // The warm job ran in the pool VM (its hostname is the machine id), which was then destroyed.
    const warmJob = jobs[firsts.findIndex((t) => WARM.test(t))];
    expect(await logTexts(warmJob.jobId)).toContain(`on ${first.id}`);
    const vm = await h.db.vm.findUnique({ where: { id: first.id } });
    expect(vm?.jobId).toBe(warmJob.jobId);
    expect(vm?.destroyedAt).not.toBeNull();
    expect(await taggedPids(await tagOf(first.id))).toEqual([]);
    // The database only ever held the assignments sealed.
    const assignments = await h.db.$queryRaw<
      { a: string | null }[]
    >`SELECT assignment AS a FROM pool_machines`;
    for (const r of assignments) expect(`${r.a}`).not.toMatch(SECRET_IN_THE_CLEAR);

    survivor = refill as PoolMachineRow;
  },
  25 * 60_000,
);

test(
  'a worker SIGKILLed with an idle pool VM: its successor adopts it, nothing leaks',
  async () => {
    await waitFor(
      async () => (await idle()).some((m) => m.id === survivor.id),
      BOOT_MS,
      'the refilled pool VM idle',
    );
    const w = worker as ChildProcess;
    w.kill('SIGKILL');
    await exited(w);
    // The VM outlived its worker; its runner keeps calling the log service.
    expect(qemuProcessesOf(h.cfg.hostId)).toHaveLength(1);
    worker = h.spawnWorker(workerEnv);
    // A look of the new worker's pool that kept it: the pool's workflow reports it idle.
    await new Promise((r) => setTimeout(r, 15_000));
    const rows = await poolRows();
    expect(rows.map((m) => ({ id: m.id, state: m.state }))).toEqual([{ id: survivor.id, state: 'idle' }]);
    expect((await idle()).map((m) => m.id)).toEqual([survivor.id]);
    // Every VM process of this host is the one the pool knows.
    expect(qemuProcessesOf(h.cfg.hostId)).toHaveLength(1);
    expect((await taggedPids(await tagOf(survivor.id))).length).toBeGreaterThan(0);
    expect(fs.readdirSync(h.workspaceRoot).filter((d) => !d.endsWith(survivor.id))).toEqual([]);
  },
  15 * 60_000,
);

test(
  'a pool VM killed while idle is noticed and replaced; nothing of it is left',
  async () => {
    const victim = survivor;
    const pids = await taggedPids(await tagOf(victim.id));
    const qemu = pids.filter((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('qemu-system');
      } catch {
        return false;
      }
    });
    expect(qemu).toHaveLength(1);
    process.kill(qemu[0], 'SIGKILL');
    await waitFor(
      async () => {
        const rows = await poolRows();
        return !rows.some((m) => m.id === victim.id) && (await idle()).length === 1;
      },
      BOOT_MS,
      'the dead pool VM replaced by an idle one',
    );
    const [replacement] = await idle();
    expect(replacement.id).not.toBe(victim.id);
    expect(await taggedPids(await tagOf(victim.id))).toEqual([]);
    expect(qemuProcessesOf(h.cfg.hostId)).toHaveLength(1);
    expect(fs.readdirSync(h.workspaceRoot).filter((d) => !d.endsWith(replacement.id))).toEqual([]);
  },
  15 * 60_000,
);
