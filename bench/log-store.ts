/**
 * How fast log lines reach PostgreSQL, by the shape of the insert: Prisma's `createMany` (a
 * multi-row VALUES list, five parameters a line; what the log service used first) against
 * JobStore.appendLogLines (four arrays unnested into rows), at the runner's batch size and at
 * the size the log service's group commit reaches under load. The shapes take turns within
 * each round, so a busy machine slows them alike and the ratio is what to read.
 *
 *   npm run bench:log-store -- [--lines 40000] [--line-bytes 200] [--rounds 3]
 *
 * Uses DATABASE_URL (default the local server) to create a throwaway database next to it.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { createDb, type Db } from '../storage/db';
import { JobStore, type LogLineRecord } from '../storage/job-store';
import { migrate } from '../storage/migrate';
import { freshDatabase } from './fixtures';

interface Shape {
  name: string;
  batch: number;
  insert(db: Db, jobs: JobStore, jobId: string, lines: LogLineRecord[]): Promise<unknown>;
}

const SHAPES: Shape[] = [
  {
    name: 'createMany (VALUES list)',
    batch: 500,
    insert: (db, _jobs, jobId, lines) =>
      db.logLine.createMany({ data: lines.map((l) => ({ jobId, ...l })), skipDuplicates: true }),
  },
  { name: 'appendLogLines (unnest)', batch: 500, insert: (_db, jobs, id, l) => jobs.appendLogLines(id, l) },
  { name: 'appendLogLines (unnest)', batch: 5000, insert: (_db, jobs, id, l) => jobs.appendLogLines(id, l) },
  {
    name: 'appendLogLines (unnest)',
    batch: 20000,
    insert: (_db, jobs, id, l) => jobs.appendLogLines(id, l),
  },
];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      lines: { type: 'string', default: '40000' },
      'line-bytes': { type: 'string', default: '200' },
      rounds: { type: 'string', default: '3' },
    },
  });
  const total = Number(values.lines);
  const lineBytes = Number(values['line-bytes']);
  const rounds = Number(values.rounds);
  const database = await freshDatabase(
    process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
  );
  await migrate({ databaseUrl: database.url });
  const db = createDb({
    databaseUrl: database.url,
    embeddedPgPort: 0,
    dbPoolMaxSize: 2,
    dbPoolTimeoutMs: 60_000,
  });
  const jobs = new JobStore(db);
  const text = 'x'.repeat(lineBytes - 1);
  const seconds = SHAPES.map((): number[] => []);
  try {
    for (let round = 0; round < rounds; round++) {
      for (const [i, shape] of SHAPES.entries()) {
        // A job of its own per run: every shape inserts into an equally empty key range.
        const jobId = randomUUID();
        await jobs.recordJob(
          {
            jobId,
            source: 'manual',
            repoUrl: 'bench',
            commitSha: '0'.repeat(40),
            label: 'bench',
            timeoutMs: 0,
            bootTimeoutMs: 0,
            maxMachineAttempts: 1,
          },
          `bench/${jobId}`,
        );
        const began = performance.now();
        for (let seq = 1; seq <= total; seq += shape.batch) {
          const lines: LogLineRecord[] = [];
          for (let s = seq; s < seq + shape.batch && s <= total; s++)
            lines.push({ seq: s, stream: 'stdout', text, time: new Date() });
          await shape.insert(db, jobs, jobId, lines);
        }
        seconds[i].push((performance.now() - began) / 1000);
        if ((await jobs.countLogLines(jobId)) !== total) throw new Error(`${shape.name} lost lines`);
      }
    }
  } finally {
    await db.$disconnect();
    await database.drop();
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const base = median(seconds[0]);
  console.log(
    `\nSolstice log store benchmark: ${total} lines of ${lineBytes} bytes, ${rounds} rounds, median; ${os.cpus().length} CPUs\n`,
  );
  console.log(`| ${'insert'.padEnd(26)} | batch | lines/s | MiB/s | vs createMany`);
  console.log(`|${'-'.repeat(28)}|-------|---------|-------|-------------`);
  for (const [i, shape] of SHAPES.entries()) {
    const s = median(seconds[i]);
    console.log(
      `| ${shape.name.padEnd(26)} | ${String(shape.batch).padStart(5)} | ${String(Math.round(total / s)).padStart(7)} | ${((total * lineBytes) / 2 ** 20 / s).toFixed(1).padStart(5)} | ${(base / s).toFixed(1)}x`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
