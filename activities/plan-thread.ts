/**
 * planDefinitions in a worker thread with a heap cap and a time limit. Parsing is the one
 * step where a repository author decides how much CPU and memory the worker spends; off
 * the event loop, a slow or huge file cannot stop the worker's heartbeats or its other
 * jobs, and a thread over its budget is terminated, not waited for.
 *
 * This file is also the thread's entry point (it runs itself, from dist/).
 */
import path from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { ApplicationFailure } from '@temporalio/common';
import type { PipelinePlan } from '../model/domain';
import { planDefinitions, type PlanTrigger } from './plan-definitions';

export const PLAN_THREAD_LIMITS = { heapMb: 256, timeoutMs: 20_000 } as const;

/**
 * The compiled copy of this file. A worker thread runs JavaScript only: under ts-jest (an
 * orchestrator worker started inside a test) this module is the .ts source, and the thread
 * runs the build of it that the integration tests always have.
 */
const ENTRY = __filename.endsWith('.ts')
  ? path.resolve(__dirname, '../dist/activities/plan-thread.js')
  : __filename;

interface Job {
  files: Record<string, string>;
  trigger: PlanTrigger;
}
type Reply =
  | { ok: true; plan: PipelinePlan | undefined }
  | { ok: false; message: string; type?: string; nonRetryable: boolean };

if (!isMainThread && (workerData as { solsticePlanThread?: boolean } | null)?.solsticePlanThread) {
  parentPort?.once('message', (job: Job) => {
    let reply: Reply;
    try {
      reply = { ok: true, plan: planDefinitions(job.files, job.trigger) };
    } catch (err) {
      const f = err instanceof ApplicationFailure ? err : undefined;
      reply = {
        ok: false,
        message: err instanceof Error ? err.message : String(err),
        type: f?.type ?? undefined,
        nonRetryable: f?.nonRetryable ?? false,
      };
    }
    parentPort?.postMessage(reply);
  });
}

export function planOffThread(
  files: Record<string, string>,
  trigger: PlanTrigger,
  opts: { signal?: AbortSignal; limits?: { heapMb: number; timeoutMs: number } } = {},
): Promise<PipelinePlan | undefined> {
  const limits = opts.limits ?? PLAN_THREAD_LIMITS;
  const where = Object.keys(files)[0] ?? 'the definition file';
  const tooBig = (what: string) =>
    ApplicationFailure.nonRetryable(
      `${where}:1:1: error: planning ${what}; see docs/limits.md for what a file may ask for`,
      'InvalidWorkflowFile',
    );
  return new Promise((resolve, reject) => {
    const worker = new Worker(ENTRY, {
      workerData: { solsticePlanThread: true },
      resourceLimits: { maxOldGenerationSizeMb: limits.heapMb, maxYoungGenerationSizeMb: 32 },
    });
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      void worker.terminate();
      fn();
    };
    const timer = setTimeout(
      () => settle(() => reject(tooBig(`took longer than ${limits.timeoutMs / 1000} s and was stopped`))),
      limits.timeoutMs,
    );
    const onAbort = () => settle(() => reject(new Error('planning cancelled')));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    worker.once('message', (r: Reply) =>
      settle(() => {
        if (r.ok) resolve(r.plan);
        else if (r.nonRetryable) reject(ApplicationFailure.nonRetryable(r.message, r.type));
        else reject(new Error(r.message));
      }),
    );
    worker.once('error', (err: Error & { code?: string }) =>
      settle(() =>
        reject(
          err.code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? tooBig(`needed more than ${limits.heapMb} MB of memory and was stopped`)
            : err,
        ),
      ),
    );
    worker.once('exit', (code) => settle(() => reject(new Error(`the planning thread exited with ${code}`))));
    worker.postMessage({ files, trigger } satisfies Job);
  });
}
