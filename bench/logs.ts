/**
 * Log path benchmark: one job prints a large log (1 GiB by default) through the real stack
 * (runner → gRPC → log service → PostgreSQL chunks → gzip + index in the blob store), while a
 * follower reads it as the job page and the API do (storage/log-follow.ts, the same code, pages
 * and poll interval).
 *
 *   npm run bench:logs -- [--mb 1024] [--line-bytes 200] [--mark-ms 50] [--poll-ms 200] [--rate 0]
 *
 * --rate paces the script at that many MiB/s (0: as fast as it can write). Unpaced, the
 * follow latency includes the backlog the script builds up; paced below the throughput it
 * shows the latency of a log that keeps up.
 *
 * Reports:
 * - throughput runner → stored: log bytes / (script's first line → its last line is in
 *   PostgreSQL), with the script's own write rate beside it;
 * - follow latency p50/p99: every --mark-ms the script prints `bench-ts <epoch ms>`; latency
 *   is when the follower receives that line minus that time;
 * - peak RSS of the log service: it runs as its own `solstice log-service` process and its
 *   /proc/<pid>/status VmHWM is read at the end (VmRSS is sampled for the baseline); beside it
 *   the largest heap left after a full GC, i.e. what the service holds rather than what V8
 *   has not collected yet.
 * The log service is stopped with SIGTERM at the end, so the run also shows its drain.
 * Uses DATABASE_URL (default the local server) to create a throwaway database next to it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runStatement } from '../storage/db-connection';
import { FsBlobStore } from '../storage/blob-store';
import { loadConfig } from '../platform/config';
import { createDb, pgPool } from '../storage/db';
import { startJob } from '../ingress/job-start';
import { JobStore } from '../storage/job-store';
import { readLogPages } from '../storage/log-follow';
import { heapGrowthGiven, LOG_SERVICE_HEAP_GROWING_PERCENT } from '../cli/commands/services';
import { startJobPage } from '../web/job-page/server';
import { createLogger } from '../platform/logger';
import { migrate } from '../storage/migrate';
import { freePort } from '../platform/net';
import { connectClient } from '../platform/temporal';
import { startDevServer } from '../devstack/temporal-dev-server';
import { runnerBundlePath } from '../runner-api/runner-bundle';
import { startRunnerServer } from '../runner-api/runner-download';
import { startOrchestratorWorker } from '../workers/orchestrator';
import { commitRepo, freshDatabase, percentile } from './fixtures';

const CLI = path.resolve(__dirname, '../cli/main.js');

/** The job's log generator: fixed-size lines, a timestamp marker every `markMs`. */
const GENERATOR = `
const [total, lineBytes, markMs, rate] = process.argv.slice(2).map(Number);
const pause = new Int32Array(new SharedArrayBuffer(4));
const line = 'x'.repeat(lineBytes - 1) + '\\n';
// Paced, a chunk is what mark-ms allows, so a marker can go out every mark-ms.
const chunkBytes = rate > 0 ? Math.min(65536, (rate * markMs) / 1000) : 65536;
const perChunk = Math.max(1, Math.floor(chunkBytes / lineBytes));
const chunk = line.repeat(perChunk);
const fd = 1;
const fs = require('fs');
const write = (s) => { let b = Buffer.from(s); while (b.length) b = b.subarray(fs.writeSync(fd, b)); };
const began = Date.now();
write('bench-start ' + began + '\\n');
let written = 0, lastMark = 0;
while (written < total) {
  const now = Date.now();
  if (now - lastMark >= markMs) { write('bench-ts ' + now + '\\n'); lastMark = now; }
  write(chunk);
  written += chunk.length;
  // Paced: sleep until the schedule of rate bytes per second catches up.
  if (rate > 0) Atomics.wait(pause, 0, 0, Math.max(0, began + (written / rate) * 1000 - Date.now()));
}
write('bench-end ' + Date.now() + '\\n');
`;

/** CPU seconds (user + system) a process used so far; undefined once it is gone. */
function cpuSeconds(pid: number): number | undefined {
  try {
    // Fields after the command (which may hold spaces) are fixed: utime and stime are 14th and 15th.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}
const CLOCK_TICKS = 100;

/**
 * Where the CPU goes, per process group: last seen CPU seconds of every process ever sampled,
 * so processes that end before the run does (the runner, the job script) still count.
 */
class CpuLedger {
  private readonly seen = new Map<number, { group: string; first: number; last: number }>();
  sample(group: string, pids: number[]): void {
    for (const pid of pids) {
      const s = cpuSeconds(pid);
      if (s === undefined) continue;
      const e = this.seen.get(pid);
      if (e) e.last = s;
      else this.seen.set(pid, { group, first: s, last: s });
    }
  }
  totals(): Map<string, number> {
    const out = new Map<string, number>();
    for (const e of this.seen.values()) out.set(e.group, (out.get(e.group) ?? 0) + e.last - e.first);
    return out;
  }
}

/** Processes of this run's machines (the runner and the job's script): their SOLSTICE_ROOT is under `root`. */
function machinePids(root: string): number[] {
  const needle = Buffer.from(`\0SOLSTICE_ROOT=${root}`);
  const pids: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (fs.readFileSync(`/proc/${e}/environ`).includes(needle)) pids.push(Number(e));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/** The PostgreSQL backends serving `database` (the log service's, the worker's and the bench's pools). */
async function backendPids(db: ReturnType<typeof createDb>, database: string): Promise<number[]> {
  const { rows } = await pgPool(db).query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE datname = $1',
    [database],
  );
  return rows.map((r) => r.pid);
}

/**
 * What the deployment's log-service.env sets for memory (glibc's MALLOC_* and NODE_OPTIONS), so
 * the bench runs the service as systemd does; `none` runs it without them, to compare.
 */
function deployMemorySettings(which: string): Record<string, string> {
  if (which === 'none') return {};
  if (which !== 'deploy') throw new Error(`--service-env is deploy or none, not ${which}`);
  const file = path.join(__dirname, '../../infra/deploy/env/log-service.env');
  const settings: Record<string, string> = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^(MALLOC_\w+|NODE_OPTIONS)=(.*)$/.exec(line.trim());
    if (m) settings[m[1]] = m[2];
  }
  return settings;
}

/** kB values of /proc/<pid>/status fields, in MiB. */
function procStatus(pid: number): { rss: number; hwm: number } {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

/**
 * The log service as its own process. It runs with --trace-gc so the bench can tell live memory
 * from garbage V8 has not collected yet: the heap size after each full (Mark-Compact)
 * collection is what the service really holds; its largest value is reported.
 */
function startLogServiceProcess(
  env: NodeJS.ProcessEnv,
  nodeArgs: string[],
): Promise<{ child: ChildProcess; liveHeapMiB: () => number; heapMiB: () => number }> {
  const child = spawn(process.execPath, ['--trace-gc', ...nodeArgs, CLI, 'log-service'], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let liveHeap = 0;
  // The heap V8 has reserved, garbage included: any collection's "(size)" figures.
  let heap = 0;
  let listening = false;
  let pending = '';
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const gc = /Mark-Compact [\d.]+ \([\d.]+\) -> ([\d.]+) \(/.exec(line);
        if (gc) liveHeap = Math.max(liveHeap, Number(gc[1]));
        for (const m of line.matchAll(/\(([\d.]+)\)/g))
          if (/ms: /.test(line)) heap = Math.max(heap, Number(m[1]));
        if (!listening && line.includes('log service listening')) {
          listening = true;
          resolve({ child, liveHeapMiB: () => liveHeap, heapMiB: () => heap });
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`log service exited with ${code} before listening`)));
  });
}

const PAGE_RUNS = 15;

/** A finished job whose log is `lines` lines of `lineBytes` bytes, archived to the blob store. */
async function finishedLog(jobs: JobStore, lines: number, lineBytes: number): Promise<string> {
  const jobId = randomUUID();
  await jobs.recordJob(
    {
      jobId,
      source: 'manual',
      repoUrl: 'bench',
      commitSha: '0'.repeat(40),
      label: 'local',
      timeoutMs: 0,
      bootTimeoutMs: 0,
      maxMachineAttempts: 1,
    },
    `bench/${jobId}`,
  );
  const text = 'x'.repeat(Math.max(0, lineBytes - 1));
  await jobs.appendLogLines(
    jobId,
    Array.from({ length: lines }, (_, i) => ({ seq: i + 1, stream: 'stdout', text, time: new Date() })),
  );
  await jobs.finalize(jobId, { state: 'success', exitCode: 0 });
  await jobs.logs.archive(jobId);
  return jobId;
}

interface PageTime {
  /** The whole page over HTTP, median ms. */
  page: number;
  /** Reading its last 1000 lines from the log store alone, median ms. */
  read: number;
}

/**
 * The job page of the finished log (its last 1000 lines, read from the blob store through the
 * line index) against that of a finished 1000-line log of the same line size (the same lines
 * to render, so only finding them differs) and of a 10-line log. The first fetch of each (no
 * cached index) is in the runs too.
 */
async function pageTimes(
  jobs: JobStore,
  blobs: FsBlobStore,
  jobId: string,
  lineBytes: number,
  log: ReturnType<typeof createLogger>,
): Promise<{ big: PageTime; same: PageTime; small: PageTime }> {
  const same = await finishedLog(jobs, 1000, lineBytes);
  const small = await finishedLog(jobs, 10, 10);
  const server = await startJobPage({ addr: '127.0.0.1:0', jobs: new JobStore(jobs.db, blobs), blobs, log });
  const reader = new JobStore(jobs.db, blobs);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const once = async (id: string): Promise<{ page: number; read: number }> => {
    let began = performance.now();
    const res = await fetch(`${server.url}/jobs/${id}`);
    if (res.status !== 200) throw new Error(`job page answered ${res.status}`);
    await res.text();
    const page = performance.now() - began;
    began = performance.now();
    const last = await reader.lastLogSeq(id);
    const got = await reader.logLinesAfter(id, Math.max(0, last - 1000), 1000);
    if (got.length !== Math.min(1000, last)) throw new Error(`read ${got.length} of the last lines`);
    return { page, read: performance.now() - began };
  };
  const ids = [jobId, same, small];
  const runs = ids.map(() => ({ page: [] as number[], read: [] as number[] }));
  try {
    // Round by round, so the server's JIT warming up and the machine's moods fall on all three.
    for (let i = 0; i < PAGE_RUNS; i++)
      for (const [k, id] of ids.entries()) {
        const t = await once(id);
        runs[k].page.push(t.page);
        runs[k].read.push(t.read);
      }
    const [big, sameLog, smallLog] = runs.map((r): PageTime => ({
      page: median(r.page),
      read: median(r.read),
    }));
    return { big, same: sameLog, small: smallLog };
  } finally {
    await server.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      mb: { type: 'string', default: '1024' },
      'line-bytes': { type: 'string', default: '200' },
      'mark-ms': { type: 'string', default: '50' },
      'poll-ms': { type: 'string', default: '200' },
      rate: { type: 'string', default: '0' },
      // Write a CPU profile of the log service (node --cpu-prof) into this folder.
      'cpu-prof': { type: 'string' },
      // Extra node flags for the log service (space-separated), e.g. to try V8 heap settings;
      // --heap-growing-percent=0 runs it with V8's default growth instead of the service's own.
      'service-node-args': { type: 'string', default: '' },
      // deploy: the memory settings of infra/deploy/env/log-service.env (as systemd runs it); none: without.
      'service-env': { type: 'string', default: 'deploy' },
      // Compression of the chunk columns: lz4 (the migrations' choice) or pglz (as before them), to compare.
      compression: { type: 'string', default: 'lz4' },
      // false: the follower polls only, as before notifications woke it.
      wake: { type: 'string', default: 'true' },
    },
  });
  const totalBytes = Math.round(Number(values.mb) * 1024 * 1024);
  const lineBytes = Number(values['line-bytes']);
  const markMs = Number(values['mark-ms']);
  const pollMs = Number(values['poll-ms']);
  const rateBps = Number(values.rate) * 1024 * 1024;
  process.env.LOG_LEVEL ??= 'warn';
  const log = createLogger('bench');

  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-bench-logs-'));
  const database = await freshDatabase(
    process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
  );
  await migrate({ databaseUrl: database.url });
  if (values.compression !== 'lz4') {
    const c = values.compression === 'pglz' ? 'pglz' : undefined;
    if (!c) throw new Error(`--compression is lz4 or pglz, not ${values.compression}`);
    await runStatement(
      database.url,
      `ALTER TABLE log_chunks ALTER COLUMN data SET COMPRESSION ${c}, ALTER COLUMN offsets SET COMPRESSION ${c}, ALTER COLUMN times SET COMPRESSION ${c}`,
    );
  }
  const temporalPort = await freePort();
  const dev = await startDevServer({
    port: temporalPort,
    uiPort: await freePort(),
    logFile: path.join(stateDir, 'temporal.log'),
  });
  const grpcAddr = `127.0.0.1:${await freePort()}`;
  const cfg = loadConfig(
    {
      stateDir,
      databaseUrl: database.url,
      temporalAddress: dev.address,
      grpcAddr,
      contactAddr: grpcAddr,
      runnerServeAddr: `127.0.0.1:${await freePort()}`,
      workspaceRoot: path.join(stateDir, 'machines'),
      blobFsRoot: path.join(stateDir, 'blobs'),
      taskQueue: 'bench-logs',
      jobTimeoutMs: '6h',
      // The bench's own queries must not fail because the machine is busy.
      dbPoolTimeoutMs: '60000',
    },
    {},
  );
  // A failed run must not leave its servers behind.
  process.once('exit', () => {
    dev.stop().catch(() => undefined);
  });
  const cpuProf = values['cpu-prof'] ? path.resolve(values['cpu-prof']) : undefined;
  const {
    child: logService,
    liveHeapMiB,
    heapMiB,
  } = await startLogServiceProcess(
    {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      LOG_LEVEL: 'warn',
      DATABASE_URL: cfg.databaseUrl,
      TEMPORAL_ADDRESS: cfg.temporalAddress,
      GRPC_ADDR: grpcAddr,
      // The deployment's allocator and V8 settings, then any given here to compare.
      ...deployMemorySettings(values['service-env']),
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('MALLOC_'))),
    },
    [
      ...(cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${cpuProf}`] : []),
      ...values['service-node-args'].split(' ').filter(Boolean),
    ],
  );
  const pid = logService.pid as number;
  process.once('exit', () => logService.kill('SIGKILL'));
  const runnerServer = await startRunnerServer({ addr: cfg.runnerServeAddr, bundlePath: runnerBundlePath() });
  const db = createDb(cfg);
  const blobs = new FsBlobStore(cfg.blobFsRoot);
  const jobs = new JobStore(db, blobs);
  const worker = await startOrchestratorWorker({ ...cfg, runnerUrl: runnerServer.url }, { jobs, blobs, log });
  const temporal = await connectClient(cfg);

  const repo = commitRepo({
    '.solstice/gen.js': GENERATOR,
    '.solstice/job.sh': `#!/bin/sh\nexec node .solstice/gen.js ${totalBytes} ${lineBytes} ${markMs} ${rateBps}\n`,
  });
  const baseline = procStatus(pid);
  const loadAtStart = os.loadavg();
  console.error(
    `bench: one job printing ${values.mb} MiB in ${lineBytes}-byte lines${rateBps > 0 ? ` at ${values.rate} MiB/s` : ''}; log service pid ${pid}, RSS ${baseline.rss.toFixed(0)} MiB`,
  );

  const enqueuedAt = Date.now();
  const { jobId } = await startJob(temporal.client, cfg, {
    source: 'manual',
    repoUrl: repo.dir,
    commitSha: repo.sha,
  });

  // Storage progress, independent of the follower: (time, highest stored seq).
  const stored: { at: number; seq: number }[] = [];
  let peakRss = baseline.rss;
  let sampling = false;
  const cpu = new CpuLedger();
  const databaseName = new URL(database.url).pathname.slice(1);
  const benchCpuAtStart = process.cpuUsage();
  cpu.sample('log service', [pid]);
  const sampleCpu = async (): Promise<void> => {
    cpu.sample('log service', [pid]);
    cpu.sample('runner + job script', machinePids(cfg.workspaceRoot));
    cpu.sample('PostgreSQL (this database)', await backendPids(db, databaseName));
  };
  await sampleCpu();
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, procStatus(pid).rss);
    if (sampling) return;
    sampling = true;
    Promise.all([jobs.lastLogSeq(jobId), sampleCpu()])
      .then(
        ([seq]) => stored.push({ at: Date.now(), seq }),
        (err: unknown) => console.error(`  storage sample skipped: ${String(err)}`),
      )
      .finally(() => (sampling = false));
  }, 250);

  const latencies: number[] = [];
  // Each line carries the time the runner read it from the job's pipe: a marker's latency
  // splits into printed -> read by the runner, and read -> received by the follower.
  const toRunner: number[] = [];
  const fromRunner: number[] = [];
  let bytes = 0;
  let lines = 0;
  let start: number | undefined;
  let end: { seq: number; printedAt: number } | undefined;
  let lastProgress = Date.now();
  // A page at a time, as the job page's and the API's followers read (sendLogLines): every line
  // of a page arrived at once.
  for await (const page of readLogPages(jobs, jobId, {
    follow: true,
    pollMs,
    wake: values.wake !== 'false',
  })) {
    const now = Date.now();
    for (const line of page) {
      bytes += Buffer.byteLength(line.text) + 1;
      lines += 1;
      const m = /^bench-(ts|start|end) (\d+)$/.exec(line.text);
      if (m?.[1] === 'ts') {
        latencies.push(now - Number(m[2]));
        toRunner.push(line.time.getTime() - Number(m[2]));
        fromRunner.push(now - line.time.getTime());
      } else if (m?.[1] === 'start') start = Number(m[2]);
      else if (m?.[1] === 'end') end = { seq: line.seq, printedAt: Number(m[2]) };
    }
    if (now - lastProgress > 10_000) {
      lastProgress = now;
      console.error(`  followed ${(bytes / 2 ** 20).toFixed(0)} MiB`);
    }
  }
  const job = await jobs.getJob(jobId);
  const finishedAt = Date.now();
  clearInterval(sampler);
  await sampleCpu();
  const benchCpu = process.cpuUsage(benchCpuAtStart);
  // The job is final before its log is in the blob store (finalizeJob records the state, then
  // archives): the page is measured on the archived log, so wait for it.
  for (;;) {
    const place = await jobs.logs.place(jobId);
    if (place.kind !== 'chunks') break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const archivedAt = Date.now();
  const cpuTotals = cpu.totals();
  cpuTotals.set('bench process (worker, follower)', (benchCpu.user + benchCpu.system) / 1e6);
  const load = os.loadavg();
  const hwm = procStatus(pid).hwm;
  const page = await pageTimes(jobs, blobs, jobId, lineBytes, log);

  logService.kill('SIGTERM');
  const drainCode = await new Promise<number | null>((resolve) => logService.once('exit', resolve));
  // Figures first: a teardown hiccup must not throw a finished run away.
  const teardown = async () => {
    await temporal.close();
    await worker.shutdown();
    await runnerServer.close();
    await db.$disconnect();
    await dev.stop();
    await database.drop();
    fs.rmSync(stateDir, { recursive: true, force: true });
    fs.rmSync(repo.dir, { recursive: true, force: true });
  };

  if (job?.state !== 'success' || start === undefined || end === undefined) {
    console.error(`bench: job ended ${job?.state ?? 'unknown'} (${job?.message ?? ''}); no figures`);
    await teardown().catch(() => undefined);
    process.exit(1);
  }
  const storedAt = stored.find((s) => s.seq >= end.seq)?.at ?? finishedAt;
  const mib = bytes / 2 ** 20;
  const sorted = latencies.sort((a, b) => a - b);
  const split = (xs: number[]) => {
    const o = [...xs].sort((a, b) => a - b);
    return `${percentile(o, 50).toFixed(0)} / ${percentile(o, 90).toFixed(0)} / ${percentile(o, 99).toFixed(0)} ms`;
  };
  const rows: [string, string][] = [
    ['log volume', `${mib.toFixed(0)} MiB, ${lines} lines (chunks compressed with ${values.compression})`],
    ['script write rate', `${(mib / ((end.printedAt - start) / 1000)).toFixed(1)} MiB/s`],
    ['throughput runner -> stored', `${(mib / ((storedAt - start) / 1000)).toFixed(1)} MiB/s`],
    ['job, enqueue -> final state', `${((finishedAt - enqueuedAt) / 1000).toFixed(1)} s`],
    ['job, final state -> log archived (gzip + index)', `${((archivedAt - finishedAt) / 1000).toFixed(1)} s`],
    [
      `follow latency p50 / p99 (poll ${pollMs} ms${values.wake === 'false' ? ', no wake-ups' : ', woken'})`,
      `${percentile(sorted, 50).toFixed(0)} / ${percentile(sorted, 99).toFixed(0)} ms (${sorted.length} samples, p90 ${percentile(sorted, 90).toFixed(0)} ms)`,
    ],
    ['  of which printed -> read by the runner, p50 / p90 / p99', split(toRunner)],
    ['  of which runner -> stored -> follower, p50 / p90 / p99', split(fromRunner)],
    ['log service RSS at start', `${baseline.rss.toFixed(0)} MiB`],
    ['log service peak RSS (VmHWM)', `${hwm.toFixed(0)} MiB (sampled VmRSS max ${peakRss.toFixed(0)} MiB)`],
    [
      'log service live heap, max after full GC',
      `${liveHeapMiB().toFixed(0)} MiB (V8 heap reserved, max ${heapMiB().toFixed(0)} MiB)`,
    ],
    ['log service exit on SIGTERM', String(drainCode)],
    [
      'job page, last 1000 lines: this log / 1000-line / 10-line log',
      `${page.big.page.toFixed(1)} / ${page.same.page.toFixed(1)} / ${page.small.page.toFixed(1)} ms (median of ${PAGE_RUNS}, from the blob store)`,
    ],
    [
      'reading those lines alone (log store)',
      `${page.big.read.toFixed(1)} / ${page.same.read.toFixed(1)} / ${page.small.read.toFixed(1)} ms`,
    ],
    ...[...cpuTotals].map(([group, secs]): [string, string] => [
      `CPU: ${group}`,
      `${secs.toFixed(1)} s (${((100 * secs) / ((finishedAt - start) / 1000)).toFixed(0)} % of a core over the run)`,
    ]),
    [
      'load average (1 min) at start / end',
      `${loadAtStart[0].toFixed(1)} / ${load[0].toFixed(1)} (15 min at end ${load[2].toFixed(1)})`,
    ],
  ];
  const memory = { ...deployMemorySettings(values['service-env']) };
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith('MALLOC_') && v) memory[k] = v;
  console.log(
    `\nSolstice log benchmark: ${os.cpus().length} CPUs; log service memory settings: ${
      Object.entries(memory)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ') || 'none'
    }${
      heapGrowthGiven(values['service-node-args'].split(' '))
        ? ''
        : `; V8 --heap-growing-percent=${LOG_SERVICE_HEAP_GROWING_PERCENT} (set by solstice log-service)`
    }${values['service-node-args'] ? ` ${values['service-node-args']}` : ''}\n`,
  );
  console.log(`| ${'metric'.padEnd(52)} | value`);
  console.log(`|${'-'.repeat(54)}|${'-'.repeat(40)}`);
  for (const [k, v] of rows) console.log(`| ${k.padEnd(52)} | ${v}`);
  await teardown().catch((err: unknown) =>
    console.error(`bench: teardown failed (figures stand): ${String(err)}`),
  );
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
