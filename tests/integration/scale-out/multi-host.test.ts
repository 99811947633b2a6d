/**
 * Solstice on a real Temporal cluster and several VM hosts (issue 13), on one machine: the
 * cluster on PostgreSQL (its own databases, schema by temporal-sql-tool, frontend, two history
 * nodes, matching and worker as separate processes, namespace and search attributes by
 * `solstice temporal setup`); three VM hosts as network namespaces, each running `solstice
 * worker` with its own host id and workspace (the local provider: machines are processes in the
 * host's namespace, which is what a lost host takes with it); the log service and the runner
 * download in a fourth namespace, reached over the test network, never over 127.0.0.1. The
 * webhook ingress, RabbitMQ and the bridge stay in the root namespace, as does the cluster
 * (bound to the test bridge's address); PostgreSQL and RabbitMQ listen on 127.0.0.1 only, so
 * the hosts reach them through proxies on that address. Each process runs the command line of
 * its unit in infra/deploy/systemd.
 *
 * 30 signed pushes go webhook → RabbitMQ → bridge → pipelines. Mid-run a history node is
 * SIGKILLed, then one host is lost (link cut, every process in it SIGKILLed): its jobs get fresh
 * machines on the other hosts through machine liveness, all 30 pipelines end `success`, none
 * is lost and no job runs twice to its end. Root only (network namespaces).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../../platform/config';
import { freePort, waitForPort } from '../../../platform/net';
import { createDb, type Db } from '../../../storage/db';
import { PipelineStore } from '../../../storage/pipeline-store';
import { FsBlobStore } from '../../../storage/blob-store';
import { JobStore } from '../../../storage/job-store';
import { CLI } from '../../support/cli';
import { createTestDatabase, type TestDatabase } from '../../support/database';
import { jobRepo } from '../../support/git-repo';
import { RUN_MARKER_ENV } from '../../support/leak-check';
import { createTestNetwork, isRoot, type TestNetwork } from '../../support/netns';
import { createTestVhost, type TestVhost } from '../../support/rabbitmq';
import { startTcpProxy, type TcpProxy } from '../../support/tcp-proxy';
import { startTestCluster, type TestCluster } from '../../support/temporal-cluster';
import { waitFor } from '../../support/wait';
import { fixture, forgejoDelivery, send } from '../../support/webhooks';

const SECRET = 'multi-host-secret';
const HOSTS = ['h1', 'h2', 'h3'] as const;
const VICTIM = 'h3';
const PER_HOST = 3;
const WAVE1 = HOSTS.length * PER_HOST; // fills every host once: each runs some
const JOBS = 30;
const LIVENESS = '5s';
// Heartbeats every third of it; long enough that a busy two-core machine never misses one.
const HOST_TTL = '10s';

const describeRoot = isRoot() ? describe : describe.skip;
if (!isRoot())
  console.warn('multi-host.test.ts skipped: it needs root (it makes network namespaces and veth pairs)');

describeRoot('Solstice on a Temporal cluster with three VM hosts (network namespaces)', () => {
  const id = randomBytes(3).toString('hex');
  let tmp: string;
  let net: TestNetwork | undefined;
  let cluster: TestCluster | undefined;
  let database: TestDatabase | undefined;
  let vhost: TestVhost | undefined;
  const proxies: TcpProxy[] = [];
  const children = new Map<string, ChildProcess>();
  let db: Db | undefined;
  let pipelines: PipelineStore;
  let jobs: JobStore;
  let webhooks: string;
  let hostId: (h: string) => string;

  /** What every Solstice process gets (each adds its own, as its unit's env file does). */
  let common: NodeJS.ProcessEnv;

  function solstice(name: string, args: string[], env: NodeJS.ProcessEnv, host?: string): ChildProcess {
    const log = fs.openSync(path.join(tmp, `${name}.log`), 'a');
    const opts = { env: { ...common, ...env }, stdio: ['ignore', log, log] as ('ignore' | number)[] };
    const child =
      host && net
        ? net.spawnIn(host, process.execPath, [CLI, ...args], opts)
        : spawn(process.execPath, [CLI, ...args], opts);
    fs.closeSync(log);
    children.set(name, child);
    return child;
  }

  beforeAll(async () => {
    // SOLSTICE_KEEP_MULTIHOST=<dir>: the processes' logs and state are kept there.
    tmp = fs.mkdtempSync(
      path.join(process.env.SOLSTICE_KEEP_MULTIHOST ?? os.tmpdir(), 'solstice-multihost-'),
    );
    fs.chmodSync(tmp, 0o755);
    net = createTestNetwork([...HOSTS, 'svc']);
    const svc = net.hosts.get('svc')!.addr;
    cluster = await startTestCluster({ layout: 'split', host: net.bridgeAddr, historyNodes: 2 });
    database = await createTestDatabase();
    vhost = await createTestVhost();
    const pg = new URL(database.url);
    const amqp = new URL(vhost.url);
    const pgProxy = await startTcpProxy(
      () => ({ host: pg.hostname, port: Number(pg.port || 5432) }),
      net.bridgeAddr,
    );
    const amqpProxy = await startTcpProxy(
      () => ({ host: amqp.hostname, port: Number(amqp.port || 5672) }),
      net.bridgeAddr,
    );
    proxies.push(pgProxy, amqpProxy);
    const viaProxy = (url: URL, proxy: TcpProxy) => {
      const u = new URL(url);
      u.host = proxy.address;
      return u.toString();
    };
    hostId = (h) => `mh-${id}-${h}`;
    common = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TMPDIR: process.env.TMPDIR,
      [RUN_MARKER_ENV]: process.env[RUN_MARKER_ENV],
      LOG_LEVEL: 'warn',
      DATABASE_URL: viaProxy(pg, pgProxy),
      AMQP_URL: viaProxy(amqp, amqpProxy),
      TEMPORAL_ADDRESS: cluster.address,
      SOLSTICE_TASK_QUEUE: `mh-${id}`,
      BLOB_FS_ROOT: path.join(tmp, 'blobs'),
      SOLSTICE_HOST_TTL: HOST_TTL,
      SOLSTICE_MACHINE_LIVENESS: LIVENESS,
      SOLSTICE_WEBHOOK_LOCAL_REPOS: 'true',
      SOLSTICE_JOB_TIMEOUT: '3m',
      SOLSTICE_BOOT_TIMEOUT: '90s',
    };
    const cfg = loadConfig({ databaseUrl: database.url, blobFsRoot: common.BLOB_FS_ROOT }, {});
    db = createDb(cfg);
    jobs = new JobStore(db, new FsBlobStore(cfg.blobFsRoot));
    pipelines = new PipelineStore(db);

    // The log service and the runner download: in their own namespace, on its address.
    solstice('log-service', ['log-service'], { GRPC_ADDR: `${svc}:50051` }, 'svc');
    solstice('runner-serve', ['runner-serve'], { SOLSTICE_RUNNER_SERVE_ADDR: `${svc}:8088` }, 'svc');
    const alive = () => [...children.values()].every((c) => c.exitCode === null && c.signalCode === null);
    for (const port of [50051, 8088])
      await waitForPort(svc, port, { timeoutMs: 90_000, isAlive: alive, what: `svc:${port}` });
    for (const h of HOSTS) {
      solstice(
        `worker-${h}`,
        ['worker'],
        {
          SOLSTICE_HOST_ID: hostId(h),
          SOLSTICE_PROVIDER: 'local',
          SOLSTICE_WORKSPACE_ROOT: path.join(tmp, `work-${h}`),
          SOLSTICE_STATE_DIR: path.join(tmp, `state-${h}`),
          SOLSTICE_HOST_MAX_MACHINES: String(PER_HOST),
          ORCH_CONTACT_ADDR: `${svc}:50051`,
          SOLSTICE_RUNNER_URL: `http://${svc}:8088/runner.js`,
        },
        h,
      );
    }
    await waitFor(async () => (await db!.host.count()) === HOSTS.length, 90_000, 'three hosts registered');
    // The ingress last: the bridge exits when Temporal does not answer at its start.
    const webhookPort = await freePort();
    solstice('webhook', ['webhook', 'serve'], {
      SOLSTICE_WEBHOOK_ADDR: `127.0.0.1:${webhookPort}`,
      SOLSTICE_FORGEJO_WEBHOOK_SECRET: SECRET,
    });
    solstice('bridge', ['bridge'], {});
    await waitForPort('127.0.0.1', webhookPort, {
      timeoutMs: 90_000,
      isAlive: alive,
      what: 'webhook ingress',
    });
    webhooks = `http://127.0.0.1:${webhookPort}`;
  }, 240_000);

  afterAll(async () => {
    for (const c of children.values()) c.kill('SIGKILL');
    net?.remove();
    await Promise.all(proxies.map((p) => p.close()));
    await db?.$disconnect();
    await cluster?.stop();
    await database?.drop();
    await vhost?.drop();
    if (tmp && !process.env.SOLSTICE_KEEP_MULTIHOST) fs.rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  /** One signed Forgejo push per branch (pushes to one branch would supersede each other). */
  async function push(repo: { dir: string; sha: string }, branch: string): Promise<string> {
    const p = fixture('forgejo-push');
    p.ref = `refs/heads/${branch}`;
    p.after = repo.sha;
    (p.repository as Record<string, unknown>).clone_url = repo.dir;
    const r = await send(webhooks, forgejoDelivery('push', p, SECRET));
    expect(r.status).toBe(202);
    return String(r.body.pipeline_id);
  }

  async function jobOf(pipelineId: string): Promise<string | undefined> {
    const [entry] = await pipelines.listJobs(pipelineId);
    return entry?.jobId ?? undefined;
  }

  async function lines(jobId: string | undefined, text: string): Promise<number> {
    if (!jobId) return 0;
    return (await jobs.logLinesAfter(jobId, 0, 1000)).filter((l) => l.text === text).length;
  }

  /** What the run looks like, for a wait that timed out: processes, pipelines, jobs, machines. */
  async function diagnose(ids: string[]): Promise<string> {
    const procs = [...children].map(([n, c]) => `${n}:${c.exitCode ?? c.signalCode ?? 'running'}`);
    const states: Record<string, number> = {};
    for (const p of ids) {
      const key = `${(await pipelines.getPipeline(p))?.state ?? 'none'}`;
      states[key] = (states[key] ?? 0) + 1;
    }
    const jobStates = await db!.job.groupBy({ by: ['state'], _count: true });
    return `processes ${procs.join(' ')}; pipelines ${JSON.stringify(states)}; jobs ${JSON.stringify(
      jobStates,
    )}; live machines ${JSON.stringify(await liveMachines())} (logs: ${tmp})`;
  }

  async function waitRun(ids: string[], fn: () => Promise<boolean>, ms: number, what: string): Promise<void> {
    try {
      await waitFor(fn, ms, what);
    } catch (err) {
      throw new Error(`${(err as Error).message}: ${await diagnose(ids)}`, { cause: err });
    }
  }

  /** Machines of the test's hosts not destroyed yet, by host. */
  async function liveMachines(): Promise<Record<string, number>> {
    const rows = await db!.vm.findMany({ where: { destroyedAt: null }, select: { host: true } });
    const out: Record<string, number> = {};
    for (const r of rows) out[r.host] = (out[r.host] ?? 0) + 1;
    return out;
  }

  test('30 pipelines over three hosts; a history node and a host lost mid-run; all 30 succeed, once each', async () => {
    const started = Date.now();
    const gate1 = path.join(tmp, 'gate1');
    const gate2 = path.join(tmp, 'gate2');
    const waitGate = (gate: string) => `echo started; while [ ! -e ${gate} ]; do sleep 0.2; done; echo done`;
    const repo1 = jobRepo(waitGate(gate1));
    const repo2 = jobRepo(waitGate(gate2));

    // Wave 1 fills every host (capacity 3 each), so each runs some to the end.
    const ids: string[] = [];
    for (let i = 0; i < WAVE1; i++) ids.push(await push(repo1, `w1-${i}`));
    await waitRun(
      ids,
      async () => {
        const n = await Promise.all(ids.map(async (p) => lines(await jobOf(p), 'started')));
        return n.every((x) => x === 1);
      },
      120_000,
      'wave 1 running on all hosts',
    );
    expect(await liveMachines()).toEqual(Object.fromEntries(HOSTS.map((h) => [hostId(h), PER_HOST])));
    fs.writeFileSync(gate1, '');
    // Its machines are destroyed before its pipelines end: what runs from here on is wave 2's.
    await waitRun(
      ids,
      async () =>
        (await Promise.all(ids.map((p) => pipelines.getPipeline(p)))).every((p) => p?.state === 'success'),
      120_000,
      'wave 1 done',
    );

    // Wave 2: 21 more; 9 run at once, 12 wait.
    for (let i = WAVE1; i < JOBS; i++) ids.push(await push(repo2, `w2-${i}`));
    expect(new Set(ids).size).toBe(JOBS);
    await waitRun(
      ids,
      async () => {
        const live = await liveMachines();
        return HOSTS.every((h) => live[hostId(h)] === PER_HOST);
      },
      120_000,
      'wave 2 filling every host',
    );
    const victimVms = await db!.vm.findMany({ where: { host: hostId(VICTIM), destroyedAt: null } });
    await waitRun(
      ids,
      async () => (await Promise.all(victimVms.map((v) => lines(v.jobId, 'started')))).every((n) => n === 1),
      60_000,
      'the victim host running its wave-2 jobs',
    );

    // A history node dies; its shards move to the other (Temporal's membership).
    const history1 = cluster!.processes.find((p) => p.name === 'history-1')!;
    history1.proc.child.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 2000));

    // The victim host is lost: link cut, every process in it SIGKILLed (worker and machines).
    const killed = net!.lose(VICTIM);
    expect(killed).toContain(children.get(`worker-${VICTIM}`)!.pid);
    expect(killed.length).toBeGreaterThan(1 + PER_HOST); // the worker and each machine's runner
    const lostAt = new Date();
    fs.writeFileSync(gate2, '');

    await waitRun(
      ids,
      async () => {
        const states = await Promise.all(ids.map(async (p) => (await pipelines.getPipeline(p))?.state));
        return states.every((s) => s === 'success' || s === 'failure' || s === 'error' || s === 'cancelled');
      },
      180_000,
      'all 30 pipelines ended',
    );
    const wall = Date.now() - started;

    // All 30 success, none lost, each with one job.
    const ended = await Promise.all(ids.map((p) => pipelines.getPipeline(p)));
    expect(ended.map((p) => p?.state)).toEqual(ids.map(() => 'success'));
    const jobIds = await Promise.all(ids.map(async (p) => (await pipelines.listJobs(p)).map((j) => j.jobId)));
    expect(jobIds.every((j) => j.length === 1)).toBe(true);

    // None ran twice to its end: each printed `done` once; the victim's lost jobs twice `started`.
    const lost = new Set(victimVms.map((v) => v.jobId));
    for (const [jobId] of jobIds) {
      expect(await lines(jobId as string, 'done')).toBe(1);
      const job = await jobs.getJob(jobId as string);
      expect(job).toMatchObject({ state: 'success', attempt: lost.has(jobId as string) ? 2 : 1 });
    }

    // Every host ran some; the lost jobs' fresh machines were on the surviving hosts.
    const vms = await db!.vm.findMany({ orderBy: { createdAt: 'asc' } });
    for (const h of HOSTS)
      expect(vms.filter((v) => v.host === hostId(h)).length).toBeGreaterThanOrEqual(PER_HOST);
    for (const jobId of lost) {
      const second = vms.find((v) => v.jobId === jobId && v.attempt === 2);
      expect(second?.host).not.toBe(hostId(VICTIM));
      expect(second?.destroyedAt).not.toBeNull();
    }
    // The victim made nothing after it was lost, and only its lost machines stay undestroyed
    // (its sweeper destroys them when it comes back).
    expect(vms.filter((v) => v.host === hostId(VICTIM) && v.createdAt > lostAt)).toEqual([]);
    expect(
      vms
        .filter((v) => v.destroyedAt === null)
        .map((v) => v.jobId)
        .sort(),
    ).toEqual([...lost].sort());

    // Capacity per host held: never more than 3 machines of one host alive at once.
    for (const h of HOSTS) {
      const mine = vms.filter((v) => v.host === hostId(h));
      for (const v of mine) {
        const t = v.createdAt.getTime();
        const alive = mine.filter(
          (o) => o.createdAt.getTime() <= t && (o.destroyedAt ?? lostAt).getTime() > t,
        ).length;
        expect(alive).toBeLessThanOrEqual(PER_HOST);
      }
    }
    // Every lease was given back; none is held on the lost host.
    const held = await db!.$queryRaw<
      { n: bigint }[]
    >`SELECT count(*) AS n FROM leases WHERE released_at IS NULL`;
    expect(Number(held[0].n)).toBe(0);

    console.log(`multi-host: ${JOBS} pipelines in ${(wall / 1000).toFixed(1)} s`);
  }, 420_000);
});
