/**
 * The orchestrator worker: runs JobWorkflow and its activities. It polls two task queues:
 * the shared one (workflows, provisioning) and its host's own one, so that a machine is
 * always destroyed by the host that made it, even after this process was replaced.
 */
import type { Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { startWorkflow } from '../ingress/start-workflow';
import fs from 'node:fs';
import path from 'node:path';
import { hostGitCacheDir } from '../model/host-cache';
import { createActivities } from '../activities';
import { createForgeStatusActivities } from '../activities/forge-status';
import { createStatusReporter } from '../forges/status';
import type { BlobStore } from '../storage/blob-store';
import { CapacityStore } from '../capacity/store';
import type { Config } from '../platform/config';
import { ConfigError } from '../platform/errors';
import { SecretStore } from '../storage/secret-store';
import type { JobStore } from '../storage/job-store';
import { ensureGcSchedule, ensureNamespaceRetention } from './gc-schedule';
import type { Logger } from '../platform/logger';
import { ensureSearchAttributes } from '../ingress/search-attributes';
import { temporalWorkerTracing } from '../platform/telemetry';
import { connectClient, connectWorker, installTemporalRuntime, workerTuning } from '../platform/temporal';
import { workerIdentity } from '../platform/version';
import { LocalProvider } from '../provisioning/local';
import { QemuProvider } from '../provisioning/qemu/provider';
import { loadImageMap, poolsOf } from '../provisioning/qemu/image-map';
import type { PoolSpec } from '../capacity/pool-spec';
import { poolWorkflowId } from '../activities/pool';
import { sweepOrphans } from '../provisioning/sweeper';
import type { MachineOwner } from '../provisioning/machine-name';
import { readInstallationId } from '../storage/installation';
import type { Provider } from '../provisioning/contract';
import { hostTaskQueue } from '../model/domain';
import { keepHostRegistered, type HostKeeper } from '../capacity/host-registration';

/** Time an activity gets to react to its shutdown cancellation before the worker gives up on it. */
const FORCE_AFTER_GRACE_MS = 10_000;

export interface RunningWorker {
  /** Resolves when the worker stopped (after shutdown() or a fatal error). */
  done: Promise<void>;
  /**
   * Stops polling and waits up to the shutdown grace time (SOLSTICE_SHUTDOWN_GRACE) for
   * in-flight activities; those still running then are cancelled and handed back to
   * Temporal, which retries them on another worker.
   */
  shutdown(): Promise<void>;
}

type ProviderSettings = Pick<
  Config,
  | 'workspaceRoot'
  | 'hostId'
  | 'provider'
  | 'imageMap'
  | 'qemuAccel'
  | 'runnerUrl'
  | 'contactAddr'
  | 'runnerOtlpEndpoint'
  | 'stateDir'
  | 'localHostCache'
>;

/**
 * The local provider's host cache folder (SOLSTICE_LOCAL_HOST_CACHE), when this host has one:
 * its machines run here, so this worker's planning shares its repositories with their checkouts.
 * A QEMU host has none (its VMs share nothing with the host).
 */
export function localHostCacheDir(
  cfg: Pick<Config, 'provider' | 'localHostCache' | 'stateDir'>,
): string | undefined {
  return cfg.provider === 'local' && cfg.localHostCache ? path.join(cfg.stateDir, 'host-cache') : undefined;
}

/**
 * Providers by runs-on label. With `qemu`, every label and alias of the image map is a VM
 * image, and `local` (what a job gets when it names no label) is the map's default_label.
 */
export function providersFor(cfg: ProviderSettings, installationId: string): Map<string, Provider> {
  const owner: MachineOwner = { installationId, hostId: cfg.hostId };
  const hostCacheDir = localHostCacheDir(cfg);
  if (cfg.provider === 'local')
    return new Map<string, Provider>([
      [
        'local',
        new LocalProvider({
          workspaceRoot: cfg.workspaceRoot,
          owner,
          hostCache: hostCacheDir ? { dir: hostCacheDir, runnerUrl: cfg.runnerUrl } : undefined,
        }),
      ],
    ]);
  if (!cfg.imageMap)
    throw new ConfigError(
      'SOLSTICE_PROVIDER=qemu needs an image map',
      'set SOLSTICE_IMAGE_MAP / --image-map to a YAML file (docs/qemu.md)',
    );
  const qemu = new QemuProvider({
    workspaceRoot: cfg.workspaceRoot,
    owner,
    imageMap: loadImageMap(cfg.imageMap),
    accel: cfg.qemuAccel,
    runnerUrl: cfg.runnerUrl,
    contactAddr: cfg.contactAddr,
    otlpEndpoint: cfg.runnerOtlpEndpoint,
  });
  return new Map<string, Provider>([...qemu.labels(), 'local'].map((label) => [label, qemu]));
}

/**
 * This host's warm pools: the image map's `pool:` per image (QEMU), then SOLSTICE_POOLS, which
 * wins; only labels this host runs machines for.
 */
export function poolsFor(
  cfg: Pick<Config, 'provider' | 'imageMap' | 'pools' | 'hostLabels'>,
  labels: readonly string[],
): Record<string, PoolSpec> {
  const fromMap = cfg.provider === 'qemu' && cfg.imageMap ? poolsOf(loadImageMap(cfg.imageMap)) : {};
  const served = new Set(cfg.hostLabels ?? labels);
  return Object.fromEntries(
    Object.entries({ ...fromMap, ...cfg.pools }).filter(
      ([label, p]) => served.has(label) && labels.includes(label) && p.maxIdle > 0,
    ),
  );
}

/** How often the pool owner looks at a host's pools without a claim asking it to. */
const POOL_LOOK_INTERVAL_MS = 5_000;

/** Sweeps at once and then on an interval; errors are logged, never fatal. */
function startSweeper(
  cfg: Config,
  deps: { jobs: JobStore; log: Logger },
  providers: Provider[],
  owner: MachineOwner,
): () => Promise<void> {
  let running: Promise<void> = Promise.resolve();
  const sweep = () => {
    running = sweepOrphans({
      jobs: deps.jobs,
      providers,
      owner,
      workspaceRoot: cfg.workspaceRoot,
    }).then(
      ({ swept, foreign }) => {
        for (const s of swept) deps.log.info(s, 'swept an orphaned machine');
        if (swept.length > 0 || foreign > 0)
          deps.log.info(
            { swept: swept.length, foreign, installationId: owner.installationId, hostId: owner.hostId },
            `sweep done: removed ${swept.length}, left ${foreign} foreign machine(s) of other installations or hosts alone`,
          );
      },
      (err: unknown) => deps.log.warn({ err }, 'sweeping orphaned machines failed'),
    );
  };
  sweep();
  const timer = setInterval(sweep, cfg.sweepIntervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}

/**
 * Starts this host's PoolWorkflow unless it runs already (a restart adopts it). Without pools it
 * is started only when pool machines of a former configuration are left: its look destroys
 * them, and it ends.
 */
async function ensurePoolOwner(client: Client, cfg: Config, hostQueue: string): Promise<void> {
  await startWorkflow(client, 'PoolWorkflow', {
    taskQueue: cfg.taskQueue,
    workflowId: poolWorkflowId(cfg.hostId),
    args: [{ hostId: cfg.hostId, hostTaskQueue: hostQueue, intervalMs: POOL_LOOK_INTERVAL_MS }],
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
}

/** The CA runners verify the log service with, when it serves TLS (sent in each job file). */
function runnerTlsCa(cfg: Config): string | undefined {
  if (!cfg.grpcTlsCa) return undefined;
  try {
    return fs.readFileSync(cfg.grpcTlsCa, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `GRPC_TLS_CA names ${cfg.grpcTlsCa}, which cannot be read: ${(err as Error).message}`,
    );
  }
}

export async function startOrchestratorWorker(
  cfg: Config,
  deps: { jobs: JobStore; blobs: BlobStore; log: Logger },
): Promise<RunningWorker> {
  installTemporalRuntime(deps.log);
  // Checked before connecting: a contradictory setting is the operator's to fix, not a retry.
  const tuning = workerTuning(cfg);
  const connection = await connectWorker(cfg);
  // Before the first run starts, so runs are findable in the Web UI by repo, commit, state...
  await ensureSearchAttributes(connection.operatorService, cfg.temporalNamespace, deps.log);
  const hostQueue = hostTaskQueue(cfg.taskQueue, cfg.hostId);
  // Machines are named after the installation, so another one on this host is never ours.
  const owner: MachineOwner = { installationId: await readInstallationId(deps.jobs.db), hostId: cfg.hostId };
  const providers = providersFor(cfg, owner.installationId);
  const hostCacheDir = localHostCacheDir(cfg);
  for (const provider of new Set(providers.values()))
    for (const warning of provider.setupWarnings ?? []) deps.log.warn({ provider: provider.name }, warning);
  const capacity = new CapacityStore(deps.jobs.db);
  const pools = poolsFor(cfg, [...providers.keys()]);
  const schedule = { labelLimits: cfg.labelLimits, hostTtlMs: cfg.hostTtlMs };
  const activities = createActivities({
    jobs: deps.jobs,
    blobs: deps.blobs,
    providers,
    capacity,
    schedule,
    hostId: cfg.hostId,
    hostTaskQueue: hostQueue,
    runnerUrl: cfg.runnerUrl,
    contactAddr: cfg.contactAddr,
    tlsCaPem: runnerTlsCa(cfg),
    secrets: SecretStore.load(cfg.secretsFile),
    runnerOtlpEndpoint: cfg.runnerOtlpEndpoint,
    machineLivenessMs: cfg.machineLivenessMs,
    actionsRunsOn: cfg.actionsRunsOn,
    gitCredentials: { forgejoToken: cfg.forgejoToken, forgejoApiUrl: cfg.forgejoApiUrl },
    planGitCacheDir: hostCacheDir ? hostGitCacheDir(hostCacheDir) : undefined,
    pools,
    bootTimeoutMs: cfg.bootTimeoutMs,
  });
  const forgeStatus = createForgeStatusActivities(
    createStatusReporter({
      forgejoToken: cfg.forgejoToken,
      forgejoApiUrl: cfg.forgejoApiUrl,
      githubAppId: cfg.githubAppId,
      githubPrivateKey: cfg.githubAppPrivateKey,
      githubApiUrl: cfg.githubApiUrl,
      publicUrl: cfg.publicUrl,
    }),
  );
  const common = {
    connection,
    namespace: cfg.temporalNamespace,
    activities: { ...activities, ...forgeStatus },
    maxConcurrentActivityTaskExecutions: tuning.maxConcurrentActivityTaskExecutions,
    identity: workerIdentity(cfg.hostId),
    shutdownGraceTime: cfg.shutdownGraceMs,
    // An activity that ignores its cancellation must not keep the process alive for ever.
    shutdownForceTime: cfg.shutdownGraceMs + FORCE_AFTER_GRACE_MS,
    // Workflow and activity spans, children of the span that started the workflow.
    ...temporalWorkerTracing(),
  } as const;
  const workers = [
    await Worker.create({
      ...common,
      taskQueue: cfg.taskQueue,
      workflowsPath: require.resolve('../workflows'),
      maxConcurrentWorkflowTaskExecutions: tuning.maxConcurrentWorkflowTaskExecutions,
      maxConcurrentLocalActivityExecutions: tuning.maxConcurrentLocalActivityExecutions,
      maxCachedWorkflows: tuning.maxCachedWorkflows,
    }),
    await Worker.create({ ...common, taskQueue: hostQueue }),
  ];
  // Registered once its queue is polled, so a slot granted here is provisioned at once.
  const temporal = await connectClient(cfg);
  const running = Promise.all(workers.map((w) => w.run()));
  let keeper: HostKeeper;
  try {
    keeper = await keepHostRegistered(
      {
        id: cfg.hostId,
        taskQueue: hostQueue,
        labels: cfg.hostLabels ?? [...providers.keys()],
        maxMachines: cfg.hostMaxMachines,
      },
      { capacity, client: temporal.client, log: deps.log, schedule },
    );
  } catch (err) {
    for (const w of workers) w.shutdown();
    await running.catch(() => undefined);
    await temporal.close();
    await connection.close();
    throw err;
  }
  try {
    await ensureNamespaceRetention(temporal.client, cfg, deps.log);
    await ensureGcSchedule(temporal.client, cfg, deps.log);
  } catch (err) {
    // Retention is housekeeping: a server that refuses it (Temporal Cloud's namespace API) must not stop jobs.
    deps.log.warn({ err }, 'could not set up retention in Temporal');
  }
  try {
    const leftovers = await deps.jobs.db.poolMachine.count({ where: { hostId: cfg.hostId } });
    if (Object.keys(pools).length > 0 || leftovers > 0)
      await ensurePoolOwner(temporal.client, cfg, hostQueue);
  } catch (err) {
    // Jobs still run (cold); the next start tries again.
    deps.log.warn({ err }, 'could not start the warm-pool workflow of this host');
  }
  deps.log.info({ taskQueue: cfg.taskQueue, hostQueue, pools }, 'orchestrator worker polling');
  const stopSweeper = startSweeper(cfg, deps, [...new Set(providers.values())], owner);
  const closeAll = async () => {
    await keeper.stop().catch((err: unknown) => deps.log.warn({ err }, 'marking the host stopped failed'));
    await temporal.close();
    await connection.close();
  };
  const done = running.then(closeAll, async (err: unknown) => {
    await closeAll();
    throw err;
  });
  return {
    done,
    async shutdown() {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await stopSweeper();
      await done;
    },
  };
}
