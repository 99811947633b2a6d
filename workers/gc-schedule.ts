/**
 * What the worker sets up in Temporal at start for retention: the Schedule that runs
 * RetentionWorkflow every SOLSTICE_GC_INTERVAL with the SOLSTICE_RETAIN_* settings, and the
 * namespace's own retention of closed workflow histories (SOLSTICE_TEMPORAL_RETENTION).
 * Every worker of a deployment does the same with the same settings, so the last to start wins
 * and the result is the same. The schedule exists even with no retention setting: the sweep also
 * removes ended sign-in sessions (storage/retention.ts), which nothing else does.
 */
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import type { Config } from '../platform/config';
import type { Logger } from '../platform/logger';
import { retentionPolicy } from '../storage/retention';

/** One schedule per task queue: deployments sharing a namespace keep theirs apart. */
export function gcScheduleId(taskQueue: string): string {
  return `solstice-gc/${taskQueue}`;
}

export async function ensureGcSchedule(client: Client, cfg: Config, log: Logger): Promise<void> {
  const scheduleId = gcScheduleId(cfg.taskQueue);
  const policy = retentionPolicy(cfg);
  const spec = { intervals: [{ every: cfg.gcIntervalMs }] };
  const action = {
    type: 'startWorkflow' as const,
    workflowType: 'RetentionWorkflow',
    taskQueue: cfg.taskQueue,
    workflowId: scheduleId,
    args: [policy],
  };
  try {
    await client.schedule.create({
      scheduleId,
      spec,
      action,
      // A sweep still running when the next is due: the next is skipped, not queued up.
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
    });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(scheduleId).update((prev) => ({ ...prev, spec, action }));
  }
  log.info({ scheduleId, everyMs: cfg.gcIntervalMs }, 'retention sweep scheduled');
}

/** Sets the namespace's retention of closed workflows when SOLSTICE_TEMPORAL_RETENTION is set. */
export async function ensureNamespaceRetention(client: Client, cfg: Config, log: Logger): Promise<void> {
  if (cfg.temporalRetentionMs === undefined) return;
  const seconds = Math.round(cfg.temporalRetentionMs / 1000);
  const svc = client.workflowService;
  const ns = await svc.describeNamespace({ namespace: cfg.temporalNamespace });
  const current = Number(ns.config?.workflowExecutionRetentionTtl?.seconds ?? -1);
  if (current === seconds) return;
  await svc.updateNamespace({
    namespace: cfg.temporalNamespace,
    config: { workflowExecutionRetentionTtl: msToTs(seconds * 1000) },
  });
  log.info(
    { namespace: cfg.temporalNamespace, retentionSeconds: seconds },
    'Temporal namespace retention set',
  );
}
