/**
 * How long the Actions planner takes on large workflow files: parse (GitHub's schema, with
 * @actions/workflow-parser), check the subset, expand matrices and plan the jobs for a push.
 * The files are generated: N jobs, each with a 2×3 matrix, `needs` on the job before and run
 * steps with expressions, until the file reaches the size asked for.
 *
 * Rows, each `--runs` times (p50 / p95 of wall and of CPU time):
 * - `parse`: parseActionsWorkflow in this process, after one untimed run (a warm JIT);
 * - `parse + plan`: planActions, the same way;
 * - `thread start`: a new planning thread (activities/plan-thread.ts) until it answers a
 *   one-line plan, without warm-up: the cost that is not the file's;
 * - `first plan, fresh thread`: what a worker's first large file costs, in a new thread,
 *   without and with the parser warm-up the worker's idle thread does (warm-up.ts).
 *
 *   npm run bench:actions -- [--kb 500] [--runs 10]
 *   node --cpu-prof dist/bench/actions.js --only parse   # profile the parse alone
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import type { PlanTrigger } from '../activities/plan-trigger';
import { parseActionsWorkflow, planActions } from '../workflow-file/actions';
import { percentile } from './fixtures';

function workflowOf(targetBytes: number): string {
  const head = 'name: big\non:\n  push:\n    branches: [main]\nenv:\n  GREETING: hello\njobs:\n';
  const parts = [head];
  let size = head.length;
  for (let j = 0; size < targetBytes; j++) {
    const steps = Array.from(
      { length: 20 },
      (_, s) =>
        `      - name: step ${s}\n        if: matrix.os != 'never'\n        env:\n          N: "${s}"\n        run: |\n          echo "job ${j} step ${s} on \${{ matrix.os }} node \${{ matrix.node }}"\n          test -n "$N"\n`,
    ).join('');
    const job =
      `  job${j}:\n    runs-on: ubuntu-latest\n${j > 0 ? `    needs: job${j - 1}\n` : ''}` +
      `    strategy:\n      matrix:\n        os: [a, b]\n        node: [18, 20, 22]\n    steps:\n${steps}`;
    parts.push(job);
    size += job.length;
  }
  return parts.join('');
}

const PATH = '.forgejo/workflows/big.yml';
const TRIGGER: PlanTrigger = {
  event: 'push',
  ref: 'refs/heads/main',
  sha: 'a'.repeat(40),
  label: 'local',
  actionsRunsOn: { local: ['ubuntu-latest'] },
};
const THREAD = path.resolve(__dirname, '../activities/plan-thread.js');

interface Sample {
  wallMs: number;
  cpuMs: number;
}

async function timed(fn: () => Promise<unknown>): Promise<Sample> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  await fn();
  const used = process.cpuUsage(cpu);
  return { wallMs: performance.now() - start, cpuMs: (used.user + used.system) / 1000 };
}

function startThread(warmUp: boolean): Worker {
  return new Worker(THREAD, {
    workerData: { solsticePlanThread: true, warmUp },
    resourceLimits: { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 32 },
  });
}

/**
 * One plan in the thread. The generated files' plans (6 matrix instances of every job) are
 * larger than a plan may be (MAX_PLAN_BYTES), so the thread refuses them after planning: that
 * answer also ends a run, the parse and the plan having been done.
 */
function planIn(worker: Worker, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    worker.once('message', (r: { ok: boolean; message?: string }) =>
      r.ok || /the plan is \d+ bytes/.test(r.message ?? '') ? resolve() : reject(new Error(r.message)),
    );
    worker.once('error', reject);
    worker.postMessage({ files: { [PATH]: text }, trigger: TRIGGER });
  });
}

/** Until the thread's event loop has been idle for a while: its warm-up is over. */
async function settled(worker: Worker): Promise<void> {
  let last = worker.performance.eventLoopUtilization();
  for (;;) {
    await new Promise((r) => setTimeout(r, 250));
    const now = worker.performance.eventLoopUtilization();
    if (worker.performance.eventLoopUtilization(now, last).utilization < 0.05) return;
    last = now;
  }
}

/**
 * A plan in a fresh thread. This thread only waits meanwhile, so the process's CPU time is the
 * planning thread's (and its garbage collection's).
 */
async function threadRun(text: string, warmUp: boolean): Promise<Sample> {
  const worker = startThread(warmUp);
  try {
    if (warmUp) await settled(worker);
    else await planIn(worker, TINY);
    return await timed(() => planIn(worker, text));
  } finally {
    await worker.terminate();
  }
}

const TINY = 'on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: "true"\n';

async function threadStart(): Promise<Sample> {
  let worker: Worker | undefined;
  try {
    return await timed(async () => {
      worker = startThread(false);
      await planIn(worker, TINY);
    });
  } finally {
    await worker?.terminate();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      kb: { type: 'string', default: '500' },
      runs: { type: 'string', default: '10' },
      only: { type: 'string' },
    },
  });
  const sizes = values.kb.split(',').map(Number);
  const runs = Math.max(1, Number(values.runs));
  const rows: string[][] = [['file', 'what', 'runs', 'wall p50', 'wall p95', 'cpu p50', 'cpu p95']];
  const add = async (file: string, what: string, run: () => Promise<Sample>, untimed = 0) => {
    if (values.only && !what.startsWith(values.only)) return;
    for (let i = 0; i < untimed; i++) await run();
    const samples: Sample[] = [];
    for (let i = 0; i < runs; i++) samples.push(await run());
    const wall = samples.map((s) => s.wallMs).sort((a, b) => a - b);
    const cpu = samples.map((s) => s.cpuMs).sort((a, b) => a - b);
    const ms = (v: number) => (Number.isNaN(v) ? '' : `${v.toFixed(0)} ms`);
    rows.push([
      file,
      what,
      String(runs),
      ms(percentile(wall, 50)),
      ms(percentile(wall, 95)),
      ms(percentile(cpu, 50)),
      ms(percentile(cpu, 95)),
    ]);
  };
  await add('(none)', 'thread start', threadStart);
  for (const kb of sizes) {
    const text = workflowOf(Math.min(kb * 1024, 1024 * 1024 - 4096));
    const file = `${(text.length / 1024).toFixed(0)} KiB`;
    const check = await planActions([{ path: PATH, text }], TRIGGER, {
      runsOn: TRIGGER.actionsRunsOn ?? {},
    });
    if (check.errors.length > 0)
      throw new Error(`the generated file is not valid: ${JSON.stringify(check.errors)}`);
    await add(file, 'parse', () => timed(() => parseActionsWorkflow(PATH, text)), 1);
    await add(
      file,
      'parse + plan',
      () =>
        timed(() => planActions([{ path: PATH, text }], TRIGGER, { runsOn: TRIGGER.actionsRunsOn ?? {} })),
      1,
    );
    await add(file, 'first plan, fresh thread', () => threadRun(text, false));
    await add(file, 'first plan, fresh thread, warmed up', () => threadRun(text, true));
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(`| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`);
  console.log('\nwall: elapsed; cpu: CPU time of the process (user + system, garbage collection included)');
}

void main();
