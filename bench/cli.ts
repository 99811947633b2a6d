/**
 * CLI latency as people feel it: whole `solstice` processes, start to exit, p50/p95 of N runs of
 * `--version`, `jobs`, `status <job>` and `logs <job>` against a throwaway database holding one
 * finished job with 200 log lines. `--baseline <main.js>` runs another build the same way
 * (e.g. one built from an older commit) for an A/B table.
 *
 *   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres node dist/bench/cli.js --runs 15
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { parseArgs, promisify } from 'node:util';
import { migrate } from '../storage/migrate';
import { createDb } from '../storage/db';
import { JobStore } from '../storage/job-store';
import { loadConfig } from '../platform/config';
import { freshDatabase, percentile } from './fixtures';

const CLI = path.resolve(__dirname, '../cli/main.js');

interface Runs {
  /** Wall time of each run, ms, sorted. */
  wall: number[];
  /** User + system CPU time of each run, ms, sorted; empty without GNU time. */
  cpu: number[];
}

/** GNU time reports a child's CPU time, which the machine's load changes far less than wall time. */
const GNU_TIME = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

async function timeRuns(cli: string, args: string[], env: NodeJS.ProcessEnv, runs: number): Promise<Runs> {
  const wall: number[] = [];
  const cpu: number[] = [];
  const cpuFile = path.join(os.tmpdir(), `solstice-bench-cli-${process.pid}.time`);
  for (let i = 0; i < runs; i++) {
    const [file, argv] = GNU_TIME
      ? [GNU_TIME, ['-f', '%U %S', '-o', cpuFile, process.execPath, cli, ...args]]
      : [process.execPath, [cli, ...args]];
    const began = process.hrtime.bigint();
    await promisify(execFile)(file, argv, { env, maxBuffer: 16 * 1024 * 1024 });
    wall.push(Number(process.hrtime.bigint() - began) / 1e6);
    if (GNU_TIME) {
      const [user, sys] = fs.readFileSync(cpuFile, 'utf8').trim().split(/\s+/).map(Number);
      cpu.push((user + sys) * 1000);
    }
  }
  fs.rmSync(cpuFile, { force: true });
  return { wall: wall.sort((a, b) => a - b), cpu: cpu.sort((a, b) => a - b) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '10' }, baseline: { type: 'string' } },
  });
  const runs = Math.max(1, Number(values.runs));
  const database = await freshDatabase(
    process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
  );
  try {
    await migrate({ databaseUrl: database.url });
    const db = createDb(loadConfig({ databaseUrl: database.url }));
    const jobId = randomUUID();
    const now = new Date();
    await db.job.create({
      data: {
        id: jobId,
        workflowId: `bench/${jobId}`,
        repoUrl: '/tmp/bench-repo',
        commitSha: 'a'.repeat(40),
        state: 'success',
        exitCode: 0,
        startedAt: now,
        finishedAt: now,
      },
    });
    await new JobStore(db).appendLogLines(
      jobId,
      Array.from({ length: 200 }, (_, i) => ({
        seq: i + 1,
        stream: 'stdout',
        text: `line ${i + 1}`,
        time: now,
      })),
    );
    await db.$disconnect();

    const env = { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: database.url, NO_COLOR: '1' };
    const commands: [string, string[]][] = [
      ['--version', ['--version']],
      ['jobs', ['jobs']],
      ['status <job>', ['status', jobId.slice(0, 8)]],
      ['logs <job>', ['logs', jobId.slice(0, 8)]],
    ];
    const builds: [string, string][] = [['this build', CLI]];
    if (values.baseline) builds.push(['baseline', path.resolve(values.baseline)]);
    const cpuCols = GNU_TIME !== undefined;
    console.log(
      `| command | ${builds.map(([name]) => `${name} p50 / p95 (ms)${cpuCols ? ` | ${name} CPU p50 (ms)` : ''}`).join(' | ')} |`,
    );
    console.log(`| --- | ${builds.map(() => (cpuCols ? '--- | ---' : '---')).join(' | ')} |`);
    for (const [name, args] of commands) {
      const cells: string[] = [];
      for (const [, cli] of builds) {
        const t = await timeRuns(cli, args, env, runs);
        cells.push(`${Math.round(percentile(t.wall, 50))} / ${Math.round(percentile(t.wall, 95))}`);
        if (cpuCols) cells.push(`${Math.round(percentile(t.cpu, 50))}`);
      }
      console.log(`| \`${name}\` | ${cells.join(' | ')} |`);
    }
    console.log(
      `\n${runs} runs each, whole processes (node start to exit), load ${os.loadavg()[0].toFixed(1)}`,
    );
  } finally {
    await database.drop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
