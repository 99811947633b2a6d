/**
 * Real Solstice services for a test file: a fresh database, the log service and runner
 * server on free ports, an orchestrator worker (in this process or as a separate `solstice
 * worker` process that a test may kill), and a Temporal client, all on the run's dev server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { FsBlobStore } from '../../storage/blob-store';
import { loadConfig, type Config } from '../../platform/config';
import { createDb, type Db } from '../../storage/db';
import { startJob } from '../../ingress/job-start';
import { startWorkflow } from '../../ingress/start-workflow';
import { hashJobToken } from '../../model/job-token';
import { JobStore, type JobRecord } from '../../storage/job-store';
import { startPipeline, type PipelineRequest } from '../../ingress/pipeline-start';
import { PipelineStore, type PipelineRecord } from '../../storage/pipeline-store';
import { createLogger } from '../../platform/logger';
import { connectClient } from '../../platform/temporal';
import { artifactLimits } from '../../runner-api/artifacts';
import { logServiceOptions, startLogService, type RunningLogService } from '../../runner-api/server';
import { runnerBundlePath } from '../../runner-api/runner-bundle';
import { startRunnerServer } from '../../runner-api/runner-download';
import { startOrchestratorWorker, type RunningWorker } from '../../workers/orchestrator';
import { createTestDatabase, type TestDatabase } from './database';
import { taggedPids } from '../../provisioning/process-tree';
import { machineTag } from '../../provisioning/machine-name';
import { readInstallationId } from '../../storage/installation';
import type { JobInput } from '../../model/domain';

const ROOT = path.resolve(__dirname, '../..');

export interface Harness {
  cfg: Config;
  db: Db;
  jobs: JobStore;
  pipelines: PipelineStore;
  client: Client;
  logService: RunningLogService;
  workspaceRoot: string;
  startWorker(): Promise<void>;
  /** A `solstice worker` child process (so a test can SIGKILL it); `env` adds or overrides settings. */
  spawnWorker(env?: NodeJS.ProcessEnv): ChildProcess;
  stopWorker(): Promise<void>;
  enqueue(
    repoDir: string,
    commitSha: string,
    opts?: { timeoutMs?: number; label?: string },
  ): Promise<{ jobId: string; workflowId: string }>;
  /**
   * Starts a bare JobWorkflow on the `local` label with the given steps, env and artifacts, one
   * machine attempt, as `<idPrefix>/<job id>`.
   */
  startJobWith(
    repo: { dir: string; sha: string },
    spec: Pick<JobInput, 'steps' | 'env' | 'artifacts'>,
    idPrefix: string,
  ): Promise<{ jobId: string; workflowId: string }>;
  /** Records a running job (no workflow behind it) whose runner token is `token`; returns its id. */
  jobWithToken(token: string): Promise<string>;
  /** Starts a PipelineWorkflow (source manual unless given). */
  startPipeline(
    repoDir: string,
    commitSha: string,
    req?: Partial<PipelineRequest>,
  ): Promise<{ pipelineId: string; workflowId: string }>;
  /** Waits for the pipeline workflow to close and returns the pipeline row. */
  pipelineResult(workflowId: string, pipelineId: string): Promise<PipelineRecord>;
  /** Waits for the workflow to close and returns the job row. */
  result(workflowId: string, jobId: string): Promise<JobRecord>;
  leftovers(): Promise<{ processes: number[]; workspaces: string[] }>;
  close(): Promise<void>;
}

export async function startHarness(overrides: Partial<Record<string, string>> = {}): Promise<Harness> {
  const temporalAddress = process.env.SOLSTICE_TEST_TEMPORAL_ADDRESS;
  if (!temporalAddress)
    throw new Error('SOLSTICE_TEST_TEMPORAL_ADDRESS is unset: run through jest (global setup)');
  const database: TestDatabase = await createTestDatabase();
  const id = randomBytes(4).toString('hex');
  const workspaceRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-ws-'));
  const blobRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-blobs-'));
  const base = {
    databaseUrl: database.url,
    temporalAddress,
    taskQueue: `test-${id}`,
    hostId: `testhost-${id}`,
    workspaceRoot,
    blobFsRoot: blobRoot,
    grpcAddr: '127.0.0.1:0',
    runnerServeAddr: '127.0.0.1:0',
    jobTimeoutMs: '2m',
    bootTimeoutMs: '60s',
    // The harness's repositories are folders of this host, whatever source a test gives its
    // pipeline (a forge's push, to test superseding): git may fetch them over `file`.
    webhookLocalRepos: 'true',
    ...overrides,
  };
  const log = createLogger('test');
  log.level = 'warn';
  let cfg = loadConfig(base, {});
  const db = createDb(cfg);
  const blobs = new FsBlobStore(cfg.blobFsRoot);
  const jobs = new JobStore(db, blobs);
  const temporal = await connectClient(cfg);
  const logService = await startLogService(cfg.grpcAddr, {
    jobs,
    temporal: temporal.client,
    log,
    ...logServiceOptions(cfg, temporal.client, { checkAmqp: false }),
    blobs,
    artifactLimits: artifactLimits(cfg),
  });
  const runnerServer = await startRunnerServer({ addr: cfg.runnerServeAddr, bundlePath: runnerBundlePath() });
  cfg = loadConfig(
    {
      ...base,
      contactAddr: overrides.contactAddr ?? logService.address,
      runnerUrl: overrides.runnerUrl ?? runnerServer.url,
    },
    {},
  );

  let worker: RunningWorker | undefined;
  const children = new Set<ChildProcess>();

  const envFor = (c: Config): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    LOG_LEVEL: 'warn',
    DATABASE_URL: c.databaseUrl,
    TEMPORAL_ADDRESS: c.temporalAddress,
    SOLSTICE_TASK_QUEUE: c.taskQueue,
    SOLSTICE_HOST_ID: c.hostId,
    SOLSTICE_WORKSPACE_ROOT: c.workspaceRoot,
    BLOB_FS_ROOT: c.blobFsRoot,
    SOLSTICE_RUNNER_URL: c.runnerUrl,
    ORCH_CONTACT_ADDR: c.contactAddr,
    ...(c.grpcTlsCa ? { GRPC_TLS_CA: c.grpcTlsCa } : {}),
    ...(c.secretsFile ? { SOLSTICE_SECRETS_FILE: c.secretsFile } : {}),
    SOLSTICE_PROVIDER: c.provider,
    SOLSTICE_IMAGE_MAP: c.imageMap,
    SOLSTICE_QEMU_ACCEL: c.qemuAccel,
    ...(c.runnerOtlpEndpoint ? { SOLSTICE_RUNNER_OTLP_ENDPOINT: c.runnerOtlpEndpoint } : {}),
  });

  const harness: Harness = {
    cfg,
    db,
    jobs,
    pipelines: new PipelineStore(db),
    client: temporal.client,
    logService,
    workspaceRoot,
    async startWorker() {
      worker = await startOrchestratorWorker(cfg, { jobs, blobs: new FsBlobStore(cfg.blobFsRoot), log });
    },
    spawnWorker(env = {}) {
      const child = spawn(process.execPath, [path.join(ROOT, 'dist/cli/main.js'), 'worker'], {
        env: { ...envFor(cfg), ...env },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      children.add(child);
      child.once('exit', () => children.delete(child));
      return child;
    },
    async stopWorker() {
      await worker?.shutdown();
      worker = undefined;
    },
    async enqueue(repoDir, commitSha, opts = {}) {
      return startJob(temporal.client, cfg, {
        source: 'manual',
        repoUrl: repoDir,
        commitSha,
        timeoutMs: opts.timeoutMs,
        label: opts.label,
      });
    },
    async startJobWith(repo, spec, idPrefix) {
      const jobId = randomUUID();
      const workflowId = `${idPrefix}/${jobId}`;
      const input: JobInput = {
        jobId,
        source: 'manual',
        repoUrl: repo.dir,
        commitSha: repo.sha,
        label: 'local',
        timeoutMs: 120_000,
        bootTimeoutMs: 60_000,
        maxMachineAttempts: 1,
        ...spec,
      };
      await startWorkflow(temporal.client, 'JobWorkflow', {
        taskQueue: cfg.taskQueue,
        workflowId,
        args: [input],
      });
      return { jobId, workflowId };
    },
    async jobWithToken(token) {
      const id = randomUUID();
      await db.job.create({
        data: {
          id,
          workflowId: `test/${id}`,
          repoUrl: '/nowhere',
          commitSha: 'a'.repeat(40),
          state: 'running',
          attempt: 1,
          tokenHash: hashJobToken(token),
        },
      });
      return id;
    },
    async startPipeline(repoDir, commitSha, req = {}) {
      return startPipeline(temporal.client, cfg, { source: 'manual', repoUrl: repoDir, commitSha, ...req });
    },
    async pipelineResult(workflowId, pipelineId) {
      try {
        await temporal.client.workflow.getHandle(workflowId).result();
      } catch (err) {
        if (!(err instanceof WorkflowFailedError)) throw err;
      }
      const p = await harness.pipelines.getPipeline(pipelineId);
      if (!p) throw new Error(`pipeline ${pipelineId} not recorded`);
      return p;
    },
    async result(workflowId, jobId) {
      try {
        await temporal.client.workflow.getHandle(workflowId).result();
      } catch (err) {
        if (!(err instanceof WorkflowFailedError)) throw err;
      }
      const job = await jobs.getJob(jobId);
      if (!job) throw new Error(`job ${jobId} not recorded`);
      return job;
    },
    async leftovers() {
      const processes: number[] = [];
      const machines = fs.existsSync(workspaceRoot) ? fs.readdirSync(workspaceRoot) : [];
      const owner = { installationId: await readInstallationId(db), hostId: cfg.hostId };
      for (const m of await db.vm.findMany({ select: { id: true } })) {
        processes.push(...(await taggedPids(machineTag(owner, m.id))));
      }
      return { processes, workspaces: machines };
    },
    async close() {
      for (const c of children) c.kill('SIGKILL');
      await worker?.shutdown();
      await logService.close();
      await runnerServer.close();
      await temporal.close();
      await db.$disconnect();
      await database.drop();
      fs.rmSync(workspaceRoot, { recursive: true, force: true });
      fs.rmSync(blobRoot, { recursive: true, force: true });
    },
  };
  return harness;
}

/**
 * The usual file setup: one harness with a worker, started before the file's first test and
 * closed after its last. `use` receives it (tests keep it in their own `let h`).
 */
export function harnessWithWorkerForFile(use: (h: Harness) => void): void {
  let h: Harness | undefined;
  beforeAll(async () => {
    h = await startHarness();
    await h.startWorker();
    use(h);
  });
  afterAll(async () => {
    await h?.close();
  });
}
