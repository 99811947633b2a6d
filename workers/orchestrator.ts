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
import { temporalWorkerTracing } from '../common/telemetry';
import { connectWorker, installTemporalRuntime } from '../common/temporal';
import { LocalProvider } from '../provisioning/local';
import type { Provider } from '../provisioning/contract';
import { hostTaskQueue } from '../workflows/types';

export interface RunningWorker {
  /** Resolves when the worker stopped (after shutdown() or a fatal error). */
  done: Promise<void>;
  /** Stops polling and waits for in-flight tasks to finish. */
  shutdown(): Promise<void>;
}

export function providersFor(cfg: Pick<Config, 'workspaceRoot' | 'hostId'>): Map<string, Provider> {
  return new Map<string, Provider>([
    ['local', new LocalProvider({ workspaceRoot: cfg.workspaceRoot, hostId: cfg.hostId })],
  ]);
}

export async function startOrchestratorWorker(
  cfg: Config,
  deps: { jobs: JobStore; blobs: BlobStore; log: Logger },
): Promise<RunningWorker> {
  installTemporalRuntime(deps.log);
  const connection = await connectWorker(cfg);
  const hostQueue = hostTaskQueue(cfg.taskQueue, cfg.hostId);
  const activities = createActivities({
    jobs: deps.jobs,
    blobs: deps.blobs,
    providers: providersFor(cfg),
    hostId: cfg.hostId,
    hostTaskQueue: hostQueue,
    runnerUrl: cfg.runnerUrl,
    contactAddr: cfg.contactAddr,
    runnerOtlpEndpoint: cfg.runnerOtlpEndpoint,
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
    // Workflow and activity spans, children of the span that started the workflow.
    ...temporalWorkerTracing(),
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
      await done;
    },
  };
}
