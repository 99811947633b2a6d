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
import { warmUpActionsParser } from '../workflow-file/actions/warm-up';
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
  let busy = false;
  parentPort?.on('message', async (job: Job) => {
    busy = true;
    let reply: Reply;
    try {
      reply = { ok: true, plan: await planDefinitions(job.files, job.trigger) };
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
  // A fresh thread's first large workflow costs twice the CPU of later ones (warm-up.ts); the
  // thread usually waits idle for its first plan, so it spends that waiting on the warm-up.
  if ((workerData as { warmUp?: boolean }).warmUp !== false)
    void warmUpActionsParser(30, () => busy).catch(() => undefined);
}

/**
 * One idle thread is kept, its modules loaded: starting a thread and loading the parser is
 * most of the time a small file takes. A thread that timed out, ran out of memory or was
 * cancelled is terminated, never reused.
 */
let idle: { worker: Worker; heapMb: number } | undefined;

function newThread(heapMb: number, warmUp = true): Worker {
  return new Worker(ENTRY, {
    workerData: { solsticePlanThread: true, warmUp },
    resourceLimits: { maxOldGenerationSizeMb: heapMb, maxYoungGenerationSizeMb: 32 },
  });
}

function takeThread(heapMb: number): Worker {
  const t = idle;
  idle = undefined;
  if (t && t.heapMb === heapMb) {
    t.worker.removeAllListeners();
    t.worker.ref();
    return t.worker;
  }
  if (t) void t.worker.terminate();
  return newThread(heapMb);
}

function giveBack(worker: Worker, heapMb: number): void {
  if (idle) {
    void worker.terminate();
    return;
  }
  // An idle thread must not keep a process alive that is otherwise done.
  worker.unref();
  const entry = { worker, heapMb };
  idle = entry;
  const forget = () => {
    if (idle === entry) idle = undefined;
  };
  worker.once('exit', forget);
  worker.once('error', forget);
}

/** Starts the idle thread ahead of the first plan (a worker calls this when it starts). */
export function warmPlanThread(heapMb: number = PLAN_THREAD_LIMITS.heapMb): void {
  if (!idle) giveBack(newThread(heapMb), heapMb);
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
    const worker = takeThread(limits.heapMb);
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      worker.removeAllListeners();
      fn();
    };
    const kill = (fn: () => void) =>
      settle(() => {
        void worker.terminate();
        fn();
      });
    const timer = setTimeout(
      () => kill(() => reject(tooBig(`took longer than ${limits.timeoutMs / 1000} s and was stopped`))),
      limits.timeoutMs,
    );
    const onAbort = () => kill(() => reject(new Error('planning cancelled')));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    worker.once('message', (r: Reply) =>
      settle(() => {
        giveBack(worker, limits.heapMb);
        if (r.ok) resolve(r.plan);
        else if (r.nonRetryable) reject(ApplicationFailure.nonRetryable(r.message, r.type));
        else reject(new Error(r.message));
      }),
    );
    worker.once('error', (err: Error & { code?: string }) =>
      kill(() =>
        reject(
          err.code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? tooBig(`needed more than ${limits.heapMb} MB of memory and was stopped`)
            : err,
        ),
      ),
    );
    worker.once('exit', (code) => kill(() => reject(new Error(`the planning thread exited with ${code}`))));
    worker.postMessage({ files, trigger } satisfies Job);
  });
}
