/**
 * The orchestrator worker: runs JobWorkflow and its activities. It polls two task queues:
 * the shared one (workflows, provisioning) and its host's own one, so that a machine is
 * always destroyed by the host that made it, even after this process was replaced.
 */
import { Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { createForgeStatusActivities, createStatusReporter } from '../activities/forge-status';
import type { BlobStore } from '../common/blob-store';
import type { Config } from '../common/config';
import type { JobStore } from '../common/job-store';
import type { Logger } from '../common/logger';
import { connectWorker, installTemporalRuntime } from '../common/temporal';
import { ConfigError } from '../common/errors';
import { LocalProvider } from '../provisioning/local';
import { QemuProvider } from '../provisioning/qemu/provider';
import { loadImageMap } from '../provisioning/qemu/image-map';
import { sweepOrphans } from '../provisioning/sweeper';
import type { Provider } from '../provisioning/contract';
import { hostTaskQueue } from '../workflows/types';

export interface RunningWorker {
  /** Resolves when the worker stopped (after shutdown() or a fatal error). */
  done: Promise<void>;
  /** Stops polling and waits for in-flight tasks to finish. */
  shutdown(): Promise<void>;
}

type ProviderSettings = Pick<
  Config,
  'workspaceRoot' | 'hostId' | 'provider' | 'imageMap' | 'qemuAccel' | 'runnerUrl' | 'contactAddr'
>;

/**
 * Providers by runs-on label. With `qemu`, every label and alias of the image map is a VM
 * image, and `local` (what a job gets when it names no label) is the map's default_label.
 */
export function providersFor(cfg: ProviderSettings): Map<string, Provider> {
  if (cfg.provider === 'local')
    return new Map<string, Provider>([
      ['local', new LocalProvider({ workspaceRoot: cfg.workspaceRoot, hostId: cfg.hostId })],
    ]);
  if (!cfg.imageMap)
    throw new ConfigError(
      'SOLSTICE_PROVIDER=qemu needs an image map',
      'set SOLSTICE_IMAGE_MAP / --image-map to a YAML file (docs/qemu.md)',
    );
  const qemu = new QemuProvider({
    workspaceRoot: cfg.workspaceRoot,
    hostId: cfg.hostId,
    imageMap: loadImageMap(cfg.imageMap),
    accel: cfg.qemuAccel,
    runnerUrl: cfg.runnerUrl,
    contactAddr: cfg.contactAddr,
  });
  return new Map<string, Provider>([...qemu.labels(), 'local'].map((label) => [label, qemu]));
}

/** Sweeps at once and then on an interval; errors are logged, never fatal. */
function startSweeper(
  cfg: Config,
  deps: { jobs: JobStore; log: Logger },
  providers: Provider[],
): () => Promise<void> {
  let running: Promise<void> = Promise.resolve();
  const sweep = () => {
    running = sweepOrphans({
      jobs: deps.jobs,
      providers,
      hostId: cfg.hostId,
      workspaceRoot: cfg.workspaceRoot,
    }).then(
      (swept) => {
        for (const s of swept) deps.log.info(s, 'swept an orphaned machine');
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

export async function startOrchestratorWorker(
  cfg: Config,
  deps: { jobs: JobStore; blobs: BlobStore; log: Logger },
): Promise<RunningWorker> {
  installTemporalRuntime(deps.log);
  const connection = await connectWorker(cfg);
  const hostQueue = hostTaskQueue(cfg.taskQueue, cfg.hostId);
  const providers = providersFor(cfg);
  const activities = createActivities({
    jobs: deps.jobs,
    blobs: deps.blobs,
    providers,
    hostId: cfg.hostId,
    hostTaskQueue: hostQueue,
    runnerUrl: cfg.runnerUrl,
    contactAddr: cfg.contactAddr,
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
    shutdownGraceTime: '30s',
  } as const;
  const workers = [
    await Worker.create({
      ...common,
      taskQueue: cfg.taskQueue,
      workflowsPath: require.resolve('../workflows'),
    }),
    await Worker.create({ ...common, taskQueue: hostQueue }),
  ];
  deps.log.info({ taskQueue: cfg.taskQueue, hostQueue }, 'orchestrator worker polling');
  const stopSweeper = startSweeper(cfg, deps, [...new Set(providers.values())]);
  const done = Promise.all(workers.map((w) => w.run())).then(
    () => connection.close(),
    async (err: unknown) => {
      await connection.close();
      throw err;
    },
  );
  return {
    done,
    async shutdown() {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await stopSweeper();
      await done;
    },
  };
}
