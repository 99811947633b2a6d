/**
 * Log storage alone, against the disk's own speed in the same run: `dd` writing the same number
 * of bytes with fdatasync into the folder PostgreSQL's server lives next to (a temp folder on the
 * same machine), then the shapes of storing a running job's log:
 *
 * - `rows (unnest)`: a row per line, four arrays unnested (the log service's insert until chunks),
 *   into a table of the old `log_lines` shape created for the run;
 * - `LogStore.append`: chunks of a few hundred lines (storage/log-store.ts), at the runner's
 *   batch size and at the size the log service's group commit reaches under load;
 * - `LogStore.archive`: the finished log read from the chunks, gzip-compressed with its line
 *   index into the filesystem blob store, and the chunks deleted.
 *
 * Shapes take turns within each round, so a busy machine slows them alike; medians are printed.
 *
 *   npm run bench:log-store -- [--lines 200000] [--line-bytes 200] [--rounds 3]
 *
 * Uses DATABASE_URL (default the local server) to create a throwaway database next to it.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createDb, pgPool } from '../storage/db';
import { FsBlobStore } from '../storage/blob-store';
import { JobStore, type LogLineRecord } from '../storage/job-store';
import { migrate } from '../storage/migrate';
import { freshDatabase } from './fixtures';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      lines: { type: 'string', default: '200000' },
      'line-bytes': { type: 'string', default: '200' },
      rounds: { type: 'string', default: '3' },
    },
  });
  const total = Number(values.lines);
  const lineBytes = Number(values['line-bytes']);
  const rounds = Number(values.rounds);
  const mib = (total * lineBytes) / 2 ** 20;
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
  const pool = pgPool(db);
  const blobRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-bench-blobs-'));
  const blobs = new FsBlobStore(blobRoot);
  const jobs = new JobStore(db, blobs);
  await pool.query(`CREATE TABLE legacy_log_lines (job_id uuid NOT NULL, seq int NOT NULL, stream text NOT NULL,
    text text NOT NULL, time timestamptz(3) NOT NULL, PRIMARY KEY (job_id, seq))`);
  const text = 'x'.repeat(lineBytes - 1);

  const newJob = async (): Promise<string> => {
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
    return jobId;
  };
  const batches = function* (batch: number): Generator<LogLineRecord[]> {
    for (let seq = 1; seq <= total; seq += batch) {
      const lines: LogLineRecord[] = [];
      for (let s = seq; s < seq + batch && s <= total; s++)
        lines.push({ seq: s, stream: 'stdout', text, time: new Date() });
      yield lines;
    }
  };
  const rowsInsert = (jobId: string, lines: LogLineRecord[]) =>
    pool.query(
      `INSERT INTO legacy_log_lines (job_id, seq, stream, text, time)
       SELECT $1::uuid, u.seq, u.stream, u.text, to_timestamp(u.ms / 1000.0)
       FROM unnest($2::int[], $3::text[], $4::text[], $5::float8[]) AS u(seq, stream, text, ms)
       ON CONFLICT (job_id, seq) DO NOTHING`,
      [
        jobId,
        lines.map((l) => l.seq),
        lines.map((l) => l.stream),
        lines.map((l) => l.text),
        lines.map((l) => l.time.getTime()),
      ],
    );

  const archivedJobs: string[] = [];
  const shapes: { name: string; batch?: number; run(): Promise<void> }[] = [
    {
      name: 'dd (bs=1M, conv=fdatasync)',
      run: async () => {
        const file = path.join(blobRoot, 'dd.bin');
        execFileSync(
          'dd',
          ['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${Math.ceil(mib)}`, 'conv=fdatasync'],
          { stdio: 'ignore' },
        );
        fs.rmSync(file);
      },
    },
    ...[500, 5000].map((batch) => ({
      name: 'rows (unnest), until now',
      batch,
      run: async () => {
        const jobId = await newJob();
        for (const lines of batches(batch)) await rowsInsert(jobId, lines);
      },
    })),
    ...[500, 5000].map((batch) => ({
      name: 'LogStore.append (chunks)',
      batch,
      run: async () => {
        const jobId = await newJob();
        for (const lines of batches(batch)) await jobs.appendLogLines(jobId, lines);
        if ((await jobs.countLogLines(jobId)) !== total) throw new Error('append lost lines');
        archivedJobs.push(jobId);
      },
    })),
    {
      name: 'LogStore.archive (gzip + index)',
      run: async () => {
        const jobId = archivedJobs.pop();
        if (!jobId) throw new Error('nothing to archive');
        await jobs.logs.archive(jobId);
      },
    },
  ];
  const seconds = shapes.map((): number[] => []);
  const sizes: Record<string, number> = {};
  try {
    for (let round = 0; round < rounds; round++) {
      for (const [i, shape] of shapes.entries()) {
        const began = performance.now();
        await shape.run();
        seconds[i].push((performance.now() - began) / 1000);
      }
    }
    // Bytes PostgreSQL holds per stored line, each shape's table with its indexes and TOAST.
    for (const table of ['legacy_log_lines', 'log_chunks']) {
      const { rows } = await pool.query<{ b: string; n: string }>(
        `SELECT pg_total_relation_size($1::regclass) AS b, (SELECT count(*) FROM ${table}) AS n`,
        [table],
      );
      sizes[table] = Number(rows[0].b);
    }
  } finally {
    await db.$disconnect();
    await database.drop();
    fs.rmSync(blobRoot, { recursive: true, force: true });
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const dd = median(seconds[0]);
  console.log(
    `\nSolstice log storage: ${total} lines of ${lineBytes} bytes (${mib.toFixed(0)} MiB), ${rounds} rounds, median; ${os.cpus().length} CPUs\n`,
  );
  console.log(`| ${'what'.padEnd(32)} | batch | lines/s    | MiB/s  | vs dd`);
  console.log(`|${'-'.repeat(34)}|-------|------------|--------|------`);
  for (const [i, shape] of shapes.entries()) {
    const s = median(seconds[i]);
    console.log(
      `| ${shape.name.padEnd(32)} | ${String(shape.batch ?? '').padStart(5)} | ${String(i === 0 ? '' : Math.round(total / s)).padStart(10)} | ${(mib / s).toFixed(1).padStart(6)} | ${(dd / s).toFixed(2)}`,
    );
  }
  // Rows: 2 batch sizes × rounds jobs; chunks: what is left after the archived ones were deleted.
  const legacyLines = 2 * rounds * total;
  const chunkLines = (2 * rounds - rounds) * total;
  console.log(
    `\nPostgreSQL bytes per stored line: rows ${(sizes.legacy_log_lines / legacyLines).toFixed(0)}, chunks ${(sizes.log_chunks / chunkLines).toFixed(0)} (line text ${lineBytes} bytes)`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
