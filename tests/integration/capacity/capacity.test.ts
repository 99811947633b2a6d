/**
 * Capacity end to end: real Temporal, PostgreSQL, worker processes and local machines.
 * A label limit queues the second job (visible in `solstice status`); two hosts share jobs
 * without exceeding their machine limits and destroy each machine on the host that made it;
 * the lease of a killed host is reclaimed so queued jobs run elsewhere.
 */
import fs from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { startJob } from '../../../ingress/job-start';
import { taggedPids } from '../../../provisioning/process-tree';
import { machineTag } from '../../../provisioning/machine-name';
import { readInstallationId } from '../../../storage/installation';
import { cliEnv, runCli } from '../../support/cli';
import { jobRepo } from '../../support/git-repo';
import { startHarness, type Harness } from '../../support/harness';
import { gatePath, waitFor } from '../../support/wait';

let h: Harness | undefined;

afterEach(async () => {
  await h?.close();
  h = undefined;
});

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) =>
    child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve()),
  );
}

async function stop(child: ChildProcess): Promise<void> {
  child.kill('SIGTERM');
  await exited(child);
}

interface LeaseRow {
  jobId: string;
  hostId: string | null;
  grantedAt: Date | null;
  releasedAt: Date | null;
  releaseReason: string | null;
}

async function leases(harness: Harness): Promise<LeaseRow[]> {
  return harness.db.$queryRaw<LeaseRow[]>`
    SELECT job_id::text AS "jobId", host_id AS "hostId", granted_at AS "grantedAt",
           released_at AS "releasedAt", release_reason AS "releaseReason"
    FROM leases ORDER BY seq`;
}

async function leaseOf(harness: Harness, jobId: string): Promise<LeaseRow | undefined> {
  return (await leases(harness)).find((l) => l.jobId === jobId);
}

async function printed(harness: Harness, jobId: string, text: string): Promise<boolean> {
  return (await harness.jobs.logLinesAfter(jobId, 0, 1000)).some((l) => l.text === text);
}

/** The worker identity (`<pid>@<hostname>`) that ran each of the workflow's activities, by type. */
async function activityWorkers(
  harness: Harness,
  workflowId: string,
): Promise<{ type: string; taskQueue: string; identity: string }[]> {
  const history = await harness.client.workflow.getHandle(workflowId).fetchHistory();
  const scheduled = new Map<string, { type: string; taskQueue: string }>();
  const out: { type: string; taskQueue: string; identity: string }[] = [];
  for (const e of history.events ?? []) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s)
      scheduled.set(String(e.eventId), {
        type: s.activityType?.name ?? '',
        taskQueue: s.taskQueue?.name ?? '',
      });
    const st = e.activityTaskStartedEventAttributes;
    if (st) {
      const sch = scheduled.get(String(st.scheduledEventId));
      if (sch) out.push({ ...sch, identity: st.identity ?? '' });
    }
  }
  return out;
}

test('with a label limit of 1 the second job is queued at position 1, then runs after the first', async () => {
  const harness = (h = await startHarness({ labelLimits: 'local=1' }));
  await harness.startWorker();
  const gate = gatePath();
  const first = jobRepo(`echo first; while [ ! -e ${gate} ]; do sleep 0.1; done`);
  const second = jobRepo('echo second');
  const a = await harness.enqueue(first.dir, first.sha);
  await waitFor(() => printed(harness, a.jobId, 'first'), 90_000, 'first job running');
  const b = await harness.enqueue(second.dir, second.sha);
  await waitFor(async () => (await leaseOf(harness, b.jobId)) !== undefined, 60_000, 'second job queued');

  const status = await runCli(['status', b.jobId], cliEnv(harness.cfg));
  expect(status.stderr).toBe('');
  expect(status.stdout).toMatch(/^state\s+queued$/m);
  expect(status.stdout).toMatch(/^queue\s+position 1 among jobs waiting for a "local" machine$/m);
  const json = await runCli(['status', b.jobId, '--json'], cliEnv(harness.cfg));
  expect(JSON.parse(json.stdout)).toMatchObject({ state: 'queued', queuePosition: 1 });
  expect(await harness.db.vm.count({ where: { jobId: b.jobId } })).toBe(0);

  // A pipeline's job cancelled while queued gives up its place without ever getting a machine.
  const pipeline = await harness.startPipeline(second.dir, second.sha);
  let cJobId: string | undefined;
  await waitFor(
    async () => {
      cJobId = (await harness.pipelines.listJobs(pipeline.pipelineId))[0]?.jobId ?? undefined;
      return cJobId !== undefined && (await leaseOf(harness, cJobId)) !== undefined;
    },
    60_000,
    'pipeline job queued',
  );
  const third = await runCli(['status', pipeline.pipelineId], cliEnv(harness.cfg));
  expect(third.stdout).toMatch(new RegExp(`^  job  running \\(queued, position 2\\)  ${cJobId}$`, 'm'));
  expect((await runCli(['status', cJobId as string], cliEnv(harness.cfg))).stdout).toMatch(
    /^queue\s+position 2 /m,
  );
  await harness.client.workflow.getHandle(pipeline.workflowId).cancel();
  expect((await harness.pipelineResult(pipeline.workflowId, pipeline.pipelineId)).state).toBe('cancelled');
  expect(await leaseOf(harness, cJobId as string)).toMatchObject({
    hostId: null,
    releaseReason: 'job cancelled',
  });
  expect(await harness.db.vm.count({ where: { jobId: cJobId } })).toBe(0);
  const bJson = await runCli(['status', b.jobId, '--json'], cliEnv(harness.cfg));
  expect(JSON.parse(bJson.stdout)).toMatchObject({ queuePosition: 1 });

  fs.writeFileSync(gate, '');
  expect((await harness.result(a.workflowId, a.jobId)).state).toBe('success');
  expect((await harness.result(b.workflowId, b.jobId)).state).toBe('success');
  const la = await leaseOf(harness, a.jobId);
  const lb = await leaseOf(harness, b.jobId);
  expect(la?.releaseReason).toBe('job success');
  // The second job got its slot only once the first job's machine was destroyed and released.
  expect(lb?.grantedAt?.getTime()).toBeGreaterThanOrEqual(la?.releasedAt?.getTime() ?? Infinity);
  const running = await runCli(['status', b.jobId], cliEnv(harness.cfg));
  expect(running.stdout).not.toMatch(/^queue/m);
});

test('a label no host serves fails the job at once, naming the labels that exist', async () => {
  const harness = (h = await startHarness());
  await harness.startWorker();
  const repo = jobRepo('echo never');
  const { jobId, workflowId } = await startJob(harness.client, harness.cfg, {
    source: 'manual',
    repoUrl: repo.dir,
    commitSha: repo.sha,
    label: 'no-such-label',
  });
  const job = await harness.result(workflowId, jobId);
  expect(job.state).toBe('error');
  expect(job.message).toBe(
    'no host runs machines for label "no-such-label"; labels of registered hosts: local',
  );
  expect(await harness.db.vm.count()).toBe(0);
});

test('two hosts share the jobs within their limits, and each destroys its own machines', async () => {
  const harness = (h = await startHarness());
  const hostA = `${harness.cfg.hostId}-a`;
  const hostB = `${harness.cfg.hostId}-b`;
  const workers = new Map<string, ChildProcess>([
    [hostA, harness.spawnWorker({ SOLSTICE_HOST_ID: hostA, SOLSTICE_HOST_MAX_MACHINES: '1' })],
    [hostB, harness.spawnWorker({ SOLSTICE_HOST_ID: hostB, SOLSTICE_HOST_MAX_MACHINES: '1' })],
  ]);
  try {
    await waitFor(async () => (await harness.db.host.count()) === 2, 60_000, 'both hosts registered');
    const gate = gatePath();
    const repo = jobRepo(`echo started; while [ ! -e ${gate} ]; do sleep 0.1; done`);
    const jobs: { jobId: string; workflowId: string }[] = [];
    for (let i = 0; i < 3; i++) jobs.push(await harness.enqueue(repo.dir, repo.sha));

    await waitFor(
      async () =>
        (await Promise.all(jobs.map((j) => printed(harness, j.jobId, 'started')))).filter(Boolean).length ===
        2,
      120_000,
      'two jobs running',
    );
    const waiting: (number | undefined)[] = [];
    for (const j of jobs) {
      const s = await runCli(['status', j.jobId, '--json'], cliEnv(harness.cfg));
      const parsed = JSON.parse(s.stdout) as { state: string; queuePosition?: number };
      if (parsed.state === 'queued') waiting.push(parsed.queuePosition);
    }
    expect(waiting).toEqual([1]);
    const machines = await harness.db.vm.findMany({ where: { destroyedAt: null } });
    expect(machines.map((m) => m.host).sort()).toEqual([hostA, hostB].sort());

    fs.writeFileSync(gate, '');
    for (const j of jobs) expect((await harness.result(j.workflowId, j.jobId)).state).toBe('success');

    // Never over-committed: on each host, one lease at a time.
    const rows = await leases(harness);
    expect(rows.every((l) => l.hostId && l.grantedAt && l.releasedAt)).toBe(true);
    for (const host of [hostA, hostB]) {
      const mine = rows
        .filter((l) => l.hostId === host)
        .sort((x, y) => x.grantedAt!.getTime() - y.grantedAt!.getTime());
      for (let i = 1; i < mine.length; i++)
        expect(mine[i].grantedAt!.getTime()).toBeGreaterThanOrEqual(mine[i - 1].releasedAt!.getTime());
    }

    // Provisioning and destroy ran on the granted host's own queue, in that host's worker process.
    for (const j of jobs) {
      const host = (await leaseOf(harness, j.jobId))?.hostId as string;
      const vm = await harness.db.vm.findFirstOrThrow({ where: { jobId: j.jobId } });
      expect(vm.host).toBe(host);
      expect(vm.destroyedAt).not.toBeNull();
      const acts = await activityWorkers(harness, j.workflowId);
      const pid = workers.get(host)?.pid;
      for (const type of ['provisionMachine', 'destroyMachine']) {
        const act = acts.find((a) => a.type === type);
        expect(act).toMatchObject({ taskQueue: `${harness.cfg.taskQueue}@${host}` });
        expect(act?.identity.startsWith(`${pid}@`)).toBe(true);
      }
      const owner = { installationId: await readInstallationId(harness.db), hostId: vm.host };
      expect(await taggedPids(machineTag(owner, vm.id))).toEqual([]);
    }
  } finally {
    for (const w of workers.values()) await stop(w);
  }
});

test('the lease of a killed host is reclaimed: a queued job runs on another host', async () => {
  const harness = (h = await startHarness());
  const env = { SOLSTICE_HOST_TTL: '6s', SOLSTICE_LABEL_LIMITS: 'local=1' };
  const hostA = `${harness.cfg.hostId}-a`;
  const hostB = `${harness.cfg.hostId}-b`;
  let a = harness.spawnWorker({ ...env, SOLSTICE_HOST_ID: hostA });
  let b: ChildProcess | undefined;
  try {
    const gate = gatePath();
    const held = jobRepo(`echo held; while [ ! -e ${gate} ]; do sleep 0.1; done`);
    const first = await harness.enqueue(held.dir, held.sha);
    await waitFor(() => printed(harness, first.jobId, 'held'), 90_000, 'first job running on host a');
    expect((await leaseOf(harness, first.jobId))?.hostId).toBe(hostA);

    b = harness.spawnWorker({ ...env, SOLSTICE_HOST_ID: hostB });
    await waitFor(async () => (await harness.db.host.count()) === 2, 60_000, 'host b registered');
    const quick = jobRepo('echo quick');
    const second = await harness.enqueue(quick.dir, quick.sha);
    await waitFor(
      async () => (await harness.jobs.getJob(second.jobId)) !== undefined,
      60_000,
      'second job recorded',
    );
    await waitFor(
      async () => (await leaseOf(harness, second.jobId)) !== undefined,
      60_000,
      'second job queued',
    );
    expect((await leaseOf(harness, second.jobId))?.grantedAt).toBeNull();

    a.kill('SIGKILL');
    await exited(a);
    expect((await harness.result(second.workflowId, second.jobId)).state).toBe('success');
    expect(await leaseOf(harness, first.jobId)).toMatchObject({
      releaseReason: `reclaimed: host ${hostA} stopped heartbeating`,
    });
    expect((await leaseOf(harness, second.jobId))?.hostId).toBe(hostB);

    // The first job's machine outlived its host's worker; it is destroyed once host a is back.
    fs.writeFileSync(gate, '');
    a = harness.spawnWorker({ ...env, SOLSTICE_HOST_ID: hostA });
    expect((await harness.result(first.workflowId, first.jobId)).state).toBe('success');
    const vm = await harness.db.vm.findFirstOrThrow({ where: { jobId: first.jobId } });
    expect(vm.host).toBe(hostA);
    expect(vm.destroyedAt).not.toBeNull();
    const destroy = (await activityWorkers(harness, first.workflowId)).find(
      (x) => x.type === 'destroyMachine',
    );
    expect(destroy?.identity.startsWith(`${a.pid}@`)).toBe(true);
  } finally {
    await stop(a);
    if (b) await stop(b);
  }
});

test('the lease of a workflow that ended without releasing it (terminated) is reclaimed', async () => {
  const harness = (h = await startHarness({ labelLimits: 'local=1', hostTtlMs: '6s' }));
  await harness.startWorker();
  const gate = gatePath();
  const held = jobRepo(`echo held; while [ ! -e ${gate} ]; do sleep 0.1; done`);
  const a = await harness.enqueue(held.dir, held.sha);
  await waitFor(() => printed(harness, a.jobId, 'held'), 90_000, 'first job running');
  const b = await harness.enqueue(held.dir, held.sha);
  await waitFor(async () => (await leaseOf(harness, b.jobId)) !== undefined, 60_000, 'second job queued');

  await harness.client.workflow.getHandle(b.workflowId).terminate('test');
  await waitFor(
    async () => (await leaseOf(harness, b.jobId))?.releasedAt !== null,
    60_000,
    'lease of the terminated workflow reclaimed',
  );
  expect(await leaseOf(harness, b.jobId)).toMatchObject({
    hostId: null,
    releaseReason: `reclaimed: workflow ${b.workflowId} terminated`,
  });
  const gone = await runCli(['status', b.jobId, '--json'], cliEnv(harness.cfg));
  expect(JSON.parse(gone.stdout)).not.toHaveProperty('queuePosition');

  fs.writeFileSync(gate, '');
  expect((await harness.result(a.workflowId, a.jobId)).state).toBe('success');
});
