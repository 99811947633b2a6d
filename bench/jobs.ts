/**
 * Job throughput and overhead on the real stack (PostgreSQL, Temporal dev server, log service,
 * runner server, worker), side by side with the floor: the same work with no engine.
 *
 *   npm run bench -- [--jobs 50] [--concurrency 1,4] [--script-ms 500] [--provider local|qemu]
 *                    [--temporal dev,cluster,cluster-split] [--host-cache on|off|off,on,...]
 *                    [--pool 0|N|0,N,...]
 *
 * With --temporal, the same run against each Temporal listed (bench/temporal-backends.ts), then
 * their figures side by side. With --host-cache listing several, the same run with the local
 * provider's host cache (SOLSTICE_LOCAL_HOST_CACHE) off and on, in that order, each on a stack
 * of its own, then each phase's p50 side by side: an A/B in one invocation on a loaded machine.
 * --pool does the same with the local provider's warm pool (SOLSTICE_POOLS=local=N: runner
 * processes started before their job, docs/qemu.md "Warm pools"); given with --host-cache, the
 * two lists pair up run by run (a single value applies to every run).
 *
 * Each job runs a script that prints its own start and end time around a sleep, so the overhead
 * is (enqueue → job finalized) minus the script's own run time. Every process of the stack
 * exports its spans to a receiver in this process (bench/span-collector.ts), which gives each
 * job's per-phase breakdown (bench/job-phases.ts). The floor, run before each concurrency level
 * with the same jobs and lanes: a fresh folder, `git clone --depth 1` of the commit, the script,
 * the folder removed.
 * Uses DATABASE_URL if set (a fresh database is created next to it), else embedded PostgreSQL.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { loadConfig } from '../platform/config';
import { createLogger } from '../platform/logger';
import { initTelemetry } from '../platform/telemetry';
import { connectClient } from '../platform/temporal';
import { startStack } from '../devstack/stack';
import {
  commitRepo,
  freeStackAddresses,
  freshDatabase,
  percentile,
  runBareJob,
  stopStackAndPool,
  writeGuestImageMap,
} from './fixtures';
import { PoolStore } from '../capacity/pool-store';
import { breakdown, PHASES, spansOfJob, type JobBreakdown } from './job-phases';
import { startSpanCollector, type CollectedSpan } from './span-collector';
import { parseTemporalFlag, startBenchTemporal, type BenchTemporal } from './temporal-backends';

const run = promisify(execFile);

/** The host's CPU time so far, busy and total, in clock ticks (/proc/stat's first line). */
function hostCpu(): { busy: number; total: number } {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  // idle and iowait
  return { busy: total - f[3] - (f[4] ?? 0), total };
}

/**
 * Where a level's CPU went: this process (the worker, the log service, the span receiver and
 * the bench's own polling all run in it, on one core at most) and the whole host; and how long
 * this process's event loop was late, which is what a saturated worker costs every job.
 */
function cpuMeter(): () => { processCores: number; hostBusy: number; loopDelayP99: number } {
  const began = Date.now();
  const cpu = process.cpuUsage();
  const host = hostCpu();
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  return () => {
    loop.disable();
    const used = process.cpuUsage(cpu);
    const h = hostCpu();
    return {
      processCores: (used.user + used.system) / 1000 / Math.max(1, Date.now() - began),
      hostBusy: (h.busy - host.busy) / Math.max(1, h.total - host.total),
      loopDelayP99: loop.percentile(99) / 1e6,
    };
  };
}

function makeRepo(scriptMs: number): { dir: string; sha: string } {
  const script = `#!/bin/sh\necho "bench-start $(date +%s%3N)"\nsleep ${(scriptMs / 1000).toFixed(3)}\necho "bench-end $(date +%s%3N)"\n`;
  return commitRepo({ '.solstice/job.sh': script });
}

/** The script's own start and end, from its output. */
function marks(lines: string[]): { start: number; end: number } | undefined {
  const t = Object.fromEntries(
    lines
      .map((l) => /^bench-(start|end) (\d+)$/.exec(l.trim()))
      .filter((m) => m !== null)
      .map((m) => [m[1], Number(m[2])]),
  );
  return t.start && t.end ? { start: t.start, end: t.end } : undefined;
}

/** The floor: one job's work with no engine. Returns its overhead beyond the script. */
async function floorJob(repo: { dir: string; sha: string }): Promise<number> {
  const began = Date.now();
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'solstice-floor-'));
  try {
    await run('git', ['clone', '-q', '--depth', '1', `file://${repo.dir}`, dir]);
    const { stdout } = await run(path.join(dir, '.solstice/job.sh'), [], { cwd: dir });
    const m = marks(stdout.split('\n'));
    if (!m) throw new Error(`floor job printed no marks: ${stdout}`);
    return Date.now() - began - (m.end - m.start);
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
}

async function lanes(total: number, concurrency: number, job: () => Promise<void>): Promise<number> {
  let next = 0;
  const began = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next += 1;
        await job();
      }
    }),
  );
  return (Date.now() - began) / 60_000;
}

/** The QEMU provider with the guest image, for --provider qemu. */
function qemuSettings(scratch: string): Record<string, string> {
  const imageMap = writeGuestImageMap(scratch);
  return { provider: 'qemu', imageMap, qemuAccel: 'tcg', bootTimeoutMs: '15m' };
}

/** Every span of the job with the median overhead, as offsets from its enqueue. */
function showTrace(
  all: readonly CollectedSpan[],
  jobs: { jobId: string; enqueuedAt: number; overhead: number }[],
): void {
  const median = [...jobs].sort((a, b) => a.overhead - b.overhead)[Math.floor(jobs.length / 2)];
  console.log(`\nspans of job ${median.jobId} (ms from enqueue):\n`);
  for (const s of spansOfJob(all, median.jobId).sort((a, b) => a.startMs - b.startMs)) {
    const from = Math.round(s.startMs - median.enqueuedAt);
    const to = Math.round(s.endMs - median.enqueuedAt);
    console.log(`  ${String(from).padStart(6)} → ${String(to).padStart(6)}  ${s.name}`);
  }
  console.log();
}

const fmt = (xs: number[], p: number) => String(Math.round(percentile(xs, p))).padStart(6);
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

const OPTIONS = {
  jobs: { type: 'string', default: '50' },
  concurrency: { type: 'string', default: '1,4' },
  'script-ms': { type: 'string', default: '500' },
  provider: { type: 'string', default: 'local' },
  // Prints every span of the median job, relative to its enqueue: what a phase is made of.
  'show-trace': { type: 'boolean', default: false },
  temporal: { type: 'string' },
  'host-cache': { type: 'string', default: 'on' },
  pool: { type: 'string', default: '0' },
  trace: { type: 'string', default: 'on' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

const USAGE = `npm run bench -- [options]
  --jobs N              jobs per concurrency level (default 50)
  --concurrency 1,4     concurrency levels, each after its floor (default 1,4)
  --script-ms 500       how long each job's script sleeps
  --provider local|qemu machines as local processes (default) or QEMU VMs
  --temporal dev,...    the same run against each Temporal: dev, cluster, cluster-split
  --host-cache off,on   the local provider's host cache per run, in order (default on):
                        several give an A/B of every phase in one invocation
  --pool 0,4            the local provider's warm pool per run (SOLSTICE_POOLS=local=N,
                        default 0: every job starts its runner); pairs up with --host-cache
  --trace on|off        export every process's spans for the per-phase breakdown (default
                        on); off measures throughput without tracing's CPU, as a deployment
                        without SOLSTICE_OTLP_ENDPOINT runs
  --show-trace          every span of the median job
`;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

/** What the side-by-side table compares, per concurrency level. */
interface LevelSummary {
  concurrency: number;
  /** Each phase's p50, ms. */
  phases: Partial<Record<(typeof PHASES)[number], number>>;
  floorP50: number;
  floorPerMinute: number;
  loadBefore: string;
  cpu?: ReturnType<ReturnType<typeof cpuMeter>>;
  ok: number;
  failed: number;
  jobsPerMinute: number;
  overheadP50: number;
  overheadP95: number;
}

/** One run against `temporalAddress` (else the stack's own: TEMPORAL_ADDRESS or a dev server). */
/**
 * Spans of several runs in one process: the SDK is set up once per process (the first run's
 * endpoint wins), so the runs share one receiver, and a run's spans are the ones of its jobs.
 */
interface SharedCollector {
  collector: Awaited<ReturnType<typeof startSpanCollector>>;
}

/** The batch span processor's own schedule (5 s) plus a margin: a run's last spans are in. */
const SPAN_EXPORT_WAIT_MS = 6_000;

function tracing(values: Values): boolean {
  if (values.trace !== 'on' && values.trace !== 'off')
    throw new Error(`--trace takes on or off, got "${values.trace}"`);
  return values.trace === 'on';
}

/** One run's settings of the local provider's host. */
interface HostVariant {
  hostCache: boolean;
  /** min_idle of the `local` pool; 0: no pool. */
  pool: number;
}

const variantName = (v: HostVariant): string => `cache ${v.hostCache ? 'on' : 'off'}, pool ${v.pool}`;

async function runBench(
  values: Values,
  temporalAddress?: string,
  host: HostVariant = { hostCache: true, pool: 0 },
  shared?: SharedCollector,
): Promise<LevelSummary[]> {
  const total = Number(values.jobs);
  const levels = values.concurrency.split(',').map(Number);
  const scriptMs = Number(values['script-ms']);
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-bench-'));
  fs.chmodSync(stateDir, 0o755);
  const database = process.env.DATABASE_URL ? await freshDatabase(process.env.DATABASE_URL) : undefined;
  const collector = shared?.collector ?? (await startSpanCollector());
  const cfg = loadConfig({
    stateDir,
    databaseUrl: database?.url,
    ...(await freeStackAddresses()),
    workspaceRoot: path.join(stateDir, 'machines'),
    taskQueue: 'bench',
    ...(tracing(values) ? { otlpEndpoint: collector.endpoint } : {}),
    ...(values.provider === 'qemu' ? qemuSettings(stateDir) : {}),
    ...(temporalAddress ? { temporalAddress } : {}),
    localHostCache: String(host.hostCache),
    // The refills of a claimed runner count against the host's machines like the jobs' own.
    ...(host.pool > 0
      ? { pools: `local=${host.pool}`, hostMaxMachines: String(2 * Math.max(host.pool, ...levels) + 1) }
      : {}),
  });
  process.env.LOG_LEVEL ??= 'warn';
  // Before the stack: its Temporal client and worker trace only when spans go somewhere.
  const telemetry = initTelemetry('solstice', cfg);
  const stack = await startStack(cfg, createLogger('bench'));
  const temporal = await connectClient(stack.cfg);
  const repo = makeRepo(scriptMs);
  if (host.pool > 0) await idleRunners(stack, host.pool);
  const load = () =>
    os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ');

  interface Level {
    concurrency: number;
    floor: number[];
    floorPerMin: number;
    jobs: { jobId: string; enqueuedAt: number; overhead: number }[];
    failed: number;
    perMin: number;
    loadBefore: string;
    loadAfter: string;
    cpu?: ReturnType<ReturnType<typeof cpuMeter>>;
  }
  const results: Level[] = [];
  for (const concurrency of levels) {
    console.error(
      `bench: ${total} jobs, ${concurrency} at a time, script ${scriptMs} ms, ${values.provider} provider`,
    );
    const loadBefore = load();
    const floor: number[] = [];
    const floorPerMin =
      total / (await lanes(total, concurrency, async () => void floor.push(await floorJob(repo))));
    const level: Level = {
      concurrency,
      floor,
      floorPerMin,
      jobs: [],
      failed: 0,
      perMin: 0,
      loadBefore,
      loadAfter: '',
    };
    const meter = cpuMeter();
    const minutes = await lanes(total, concurrency, async () => {
      const enqueuedAt = Date.now();
      const job = await runBareJob(temporal.client, stack, repo);
      const m = marks((await stack.jobs.logLinesAfter(job.id, 0, 100)).map((l) => l.text));
      if (job.state !== 'success' || !job.finishedAt || !m) {
        level.failed += 1;
        return;
      }
      level.jobs.push({
        jobId: job.id,
        enqueuedAt,
        overhead: job.finishedAt.getTime() - enqueuedAt - (m.end - m.start),
      });
    });
    level.perMin = level.jobs.length / minutes;
    level.cpu = meter();
    level.loadAfter = load();
    results.push(level);
  }

  // A pool's idle runners are not the stack's own processes: they go with it, never leak.
  await stopStackAndPool(stack, temporal);
  // Flushes the worker's and the log service's spans; the runners sent theirs as they ended.
  await telemetry.shutdown();
  if (shared) await new Promise((r) => setTimeout(r, SPAN_EXPORT_WAIT_MS));
  else await collector.close();

  console.log(
    `\nSolstice ${values.provider}-provider benchmark, ${os.cpus().length} CPUs, script ${scriptMs} ms, host ${variantName(host)}, tracing ${values.trace}\n`,
  );
  const phaseP50s: Partial<Record<(typeof PHASES)[number], number>>[] = [];
  for (const r of results) {
    const per: JobBreakdown[] = [];
    let unexplained = 0;
    for (const j of tracing(values) ? r.jobs : []) {
      try {
        per.push(breakdown(spansOfJob(collector.spans, j.jobId), j.enqueuedAt));
      } catch (err) {
        unexplained += 1;
        if (unexplained === 1) console.error(`job ${j.jobId}: ${(err as Error).message}`);
      }
    }
    console.log(
      `concurrency ${r.concurrency}: ${r.jobs.length} ok, ${r.failed} failed; load average before ${r.loadBefore}, after ${r.loadAfter}` +
        (unexplained ? `; ${unexplained} jobs without a complete trace` : ''),
    );
    console.log(`\n| phase (ms)                   |    p50 |    p95 |`);
    console.log(`|------------------------------|--------|--------|`);
    const p50s: Partial<Record<(typeof PHASES)[number], number>> = {};
    for (const phase of PHASES) {
      const xs = sorted(per.map((b) => b.phases[phase]).filter((x) => x !== undefined));
      if (xs.length > 0) console.log(`| ${phase.padEnd(28)} | ${fmt(xs, 50)} | ${fmt(xs, 95)} |`);
      if (xs.length > 0) p50s[phase] = percentile(xs, 50);
    }
    phaseP50s.push(p50s);
    if (values['show-trace'] && r.jobs.length > 0) showTrace(collector.spans, r.jobs);
    const spanOverhead = sorted(per.map((b) => b.totalMs - b.scriptMs));
    const ovh = sorted(r.jobs.map((j) => j.overhead));
    const floor = sorted(r.floor);
    if (spanOverhead.length > 0)
      console.log(
        `| ${'overhead (spans)'.padEnd(28)} | ${fmt(spanOverhead, 50)} | ${fmt(spanOverhead, 95)} |`,
      );
    console.log(`| ${'overhead (enqueue → final)'.padEnd(28)} | ${fmt(ovh, 50)} | ${fmt(ovh, 95)} |`);
    console.log(`| ${'floor overhead'.padEnd(28)} | ${fmt(floor, 50)} | ${fmt(floor, 95)} |`);
    if (r.cpu)
      console.log(
        `\nCPU while the jobs ran: this process (worker, log service, span receiver) ${(r.cpu.processCores * 100).toFixed(0)}% of a core, the host ${(r.cpu.hostBusy * 100).toFixed(0)}% busy; event-loop delay p99 ${r.cpu.loopDelayP99.toFixed(0)} ms`,
      );
    console.log(
      `\njobs/minute: Solstice ${r.perMin.toFixed(1)}, floor ${r.floorPerMin.toFixed(1)}; overhead p50 ${(percentile(ovh, 50) / Math.max(1, percentile(floor, 50))).toFixed(1)}× the floor's\n`,
    );
  }

  await database?.drop();
  fs.rmSync(stateDir, { recursive: true, force: true });
  return results.map((r, i) => {
    const ovh = sorted(r.jobs.map((j) => j.overhead));
    return {
      concurrency: r.concurrency,
      phases: phaseP50s[i],
      floorP50: percentile(sorted(r.floor), 50),
      floorPerMinute: r.floorPerMin,
      loadBefore: r.loadBefore,
      cpu: r.cpu,
      ok: r.jobs.length,
      failed: r.failed,
      jobsPerMinute: r.perMin,
      overheadP50: ovh.length ? percentile(ovh, 50) : NaN,
      overheadP95: ovh.length ? percentile(ovh, 95) : NaN,
    };
  });
}

/** --host-cache and --pool, paired run by run; a list of one applies to every run. */
function parseHostVariants(hostCache: string, pool: string): HostVariant[] {
  const caches = hostCache.split(',').map((v) => {
    if (v === 'on') return true;
    if (v === 'off') return false;
    throw new Error(`--host-cache takes on, off or a list of them (e.g. off,on), got "${v}"`);
  });
  const pools = pool.split(',').map((v) => {
    if (!/^\d+$/.test(v)) throw new Error(`--pool takes a count or a list of them (e.g. 0,4), got "${v}"`);
    return Number(v);
  });
  const runs = Math.max(caches.length, pools.length);
  if ((caches.length > 1 && caches.length !== runs) || (pools.length > 1 && pools.length !== runs))
    throw new Error(
      `--host-cache lists ${caches.length} runs and --pool ${pools.length}: give them the same length, or one value`,
    );
  return Array.from({ length: runs }, (_, i) => ({
    hostCache: caches[caches.length > 1 ? i : 0],
    pool: pools[pools.length > 1 ? i : 0],
  }));
}

/** Waits until the host's `local` pool has `count` idle runners, so the first jobs claim warm too. */
async function idleRunners(stack: Awaited<ReturnType<typeof startStack>>, count: number): Promise<void> {
  const pool = new PoolStore(stack.jobs.db);
  const deadline = Date.now() + 120_000;
  while ((await pool.list()).filter((m) => m.state === 'idle' && !m.reservedJobId).length < count) {
    if (Date.now() > deadline) throw new Error(`the local pool did not reach ${count} idle runners in 2 min`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Each phase's p50 per run, runs as columns: what moved between them. */
function printSideBySide(runs: { name: string; levels: LevelSummary[] }[]): void {
  const concurrencies = [...new Set(runs.flatMap((r) => r.levels.map((l) => l.concurrency)))];
  for (const c of concurrencies) {
    const cols = runs.map((r) => ({ name: r.name, l: r.levels.find((l) => l.concurrency === c) }));
    console.log(`\n| concurrency ${c}, p50 ms | ${cols.map((x) => x.name).join(' | ')} |`);
    console.log(`| --- | ${cols.map(() => '---:').join(' | ')} |`);
    const row = (label: string, f: (l: LevelSummary) => string) =>
      console.log(`| ${label} | ${cols.map((x) => (x.l ? f(x.l) : '')).join(' | ')} |`);
    for (const phase of PHASES) {
      if (cols.every((x) => x.l?.phases[phase] === undefined)) continue;
      row(phase, (l) => (l.phases[phase] === undefined ? '' : String(Math.round(l.phases[phase]))));
    }
    row('overhead (enqueue → final)', (l) => String(Math.round(l.overheadP50)));
    row('floor overhead', (l) => String(Math.round(l.floorP50)));
    row('ratio to the floor', (l) => `${(l.overheadP50 / Math.max(1, l.floorP50)).toFixed(1)}×`);
    row('jobs/min (floor)', (l) => `${l.jobsPerMinute.toFixed(1)} (${l.floorPerMinute.toFixed(0)})`);
    row('load average at the start', (l) => l.loadBefore.split(' ')[0]);
    row('worker process CPU, % of a core', (l) => (l.cpu ? (l.cpu.processCores * 100).toFixed(0) : ''));
    row('host CPU busy, %', (l) => (l.cpu ? (l.cpu.hostBusy * 100).toFixed(0) : ''));
    row('event-loop delay p99, ms', (l) => (l.cpu ? l.cpu.loopDelayP99.toFixed(0) : ''));
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: OPTIONS });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (!values.temporal) {
    const variants = parseHostVariants(values['host-cache'], values.pool);
    const runs: { name: string; levels: LevelSummary[] }[] = [];
    const shared = variants.length > 1 ? { collector: await startSpanCollector() } : undefined;
    // Held across the runs, so the SDK (and its exporter to this receiver) outlives each.
    const keep =
      shared && tracing(values)
        ? initTelemetry('solstice', loadConfig({ otlpEndpoint: shared.collector.endpoint }))
        : undefined;
    for (const [i, host] of variants.entries()) {
      const levels = await runBench(values, undefined, host, shared);
      runs.push({ name: `${variantName(host)}${variants.length > 2 ? `, ${i + 1}` : ''}`, levels });
    }
    await keep?.shutdown();
    await shared?.collector.close();
    if (runs.length > 1) printSideBySide(runs);
    process.exit(runs.some((r) => r.levels.some((l) => l.failed > 0)) ? 1 : 0);
  }
  const results: [BenchTemporal, LevelSummary[]][] = [];
  for (const kind of parseTemporalFlag(values.temporal)) {
    console.log(`\n## Temporal: ${kind}`);
    const server = await startBenchTemporal(kind);
    try {
      results.push([
        kind,
        await runBench(values, server.address, parseHostVariants(values['host-cache'], values.pool)[0]),
      ]);
    } finally {
      await server.stop();
    }
  }
  console.log('\n## Side by side\n');
  console.log('| Temporal | concurrency | ok | failed | jobs/min | overhead p50 ms | overhead p95 ms |');
  console.log('| -------- | ----------: | -: | -----: | -------: | --------------: | --------------: |');
  for (const [kind, levels] of results)
    for (const l of levels)
      console.log(
        `| ${kind} | ${l.concurrency} | ${l.ok} | ${l.failed} | ${l.jobsPerMinute.toFixed(1)} | ${Math.round(l.overheadP50)} | ${Math.round(l.overheadP95)} |`,
      );
  process.exit(results.some(([, levels]) => levels.some((l) => l.failed > 0)) ? 1 : 0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
