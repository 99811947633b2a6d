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

/** CPU seconds (user + system) the processes used so far, from /proc (the server is local). */
function cpuOf(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(f[11]) + Number(f[12])) / 100;
    } catch {
      // gone, or a server on another machine: no figure
    }
  }
  return total;
}

/** A line of build-log-like text: words and numbers from a fixed pseudo-random sequence. */
function wordsLine(bytes: number, seed0: number): string {
  const words = [
    'compiling',
    'src/',
    'module',
    'warning:',
    'unused',
    'ok',
    'test',
    'passed',
    'in',
    'ms',
    'GET',
    '/api/v1/',
  ];
  let seed = seed0 + 1;
  let out = '';
  while (out.length < bytes) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    out += seed % 3 === 0 ? `${seed % 100000} ` : `${words[seed % words.length]} `;
  }
  return out.slice(0, bytes);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      lines: { type: 'string', default: '200000' },
      'line-bytes': { type: 'string', default: '200' },
      rounds: { type: 'string', default: '3' },
      // x: one repeated character (compresses to almost nothing, as in earlier runs); words: text
      // that compresses about as a build log does.
      text: { type: 'string', default: 'x' },
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
  // 1000 different lines in turn for `words`, so no chunk is one line repeated.
  const texts =
    values.text === 'words'
      ? Array.from({ length: 1000 }, (_, i) => wordsLine(lineBytes - 1, i))
      : ['x'.repeat(lineBytes - 1)];

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
        lines.push({ seq: s, stream: 'stdout', text: texts[s % texts.length], time: new Date() });
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
  const compressionOf = new Map<string, 'pglz' | 'lz4'>();
  /** Compression of the chunk columns for values written from now on. */
  const setCompression = (c: 'pglz' | 'lz4') =>
    pool.query(
      `ALTER TABLE log_chunks ALTER COLUMN data SET COMPRESSION ${c}, ALTER COLUMN offsets SET COMPRESSION ${c}, ALTER COLUMN times SET COMPRESSION ${c}`,
    );
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
    // pglz (PostgreSQL's default, as before migration 20261201210000) against lz4 (now).
    ...[500, 5000].flatMap((batch) =>
      (['pglz', 'lz4'] as const).map((compression) => ({
        name: `LogStore.append (chunks, ${compression})`,
        batch,
        compression,
        run: async () => {
          await setCompression(compression);
          const jobId = await newJob();
          compressionOf.set(jobId, compression);
          for (const lines of batches(batch)) await jobs.appendLogLines(jobId, lines);
          if ((await jobs.countLogLines(jobId)) !== total) throw new Error('append lost lines');
          archivedJobs.push(jobId);
        },
      })),
    ),
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
  const cpu = shapes.map(() => ({ node: 0, pg: 0 }));
  const backends = async (): Promise<number[]> =>
    (
      await pool.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database()')
    ).rows.map((r) => r.pid);
  const sizes: Record<string, number> = {};
  const valueBytes: Record<string, number> = {};
  const valueLines: Record<string, number> = {};
  try {
    for (let round = 0; round < rounds; round++) {
      for (const [i, shape] of shapes.entries()) {
        const pgBefore = cpuOf(await backends());
        const nodeBefore = process.cpuUsage();
        const began = performance.now();
        await shape.run();
        seconds[i].push((performance.now() - began) / 1000);
        const node = process.cpuUsage(nodeBefore);
        cpu[i].node += (node.user + node.system) / 1e6 / rounds;
        cpu[i].pg += (cpuOf(await backends()) - pgBefore) / rounds;
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
    // And what each compression made of the chunk values (left: the jobs not archived).
    for (const [jobId, c] of compressionOf) {
      const { rows } = await pool.query<{ b: string | null }>(
        `SELECT sum(pg_column_size(data) + pg_column_size(offsets) + pg_column_size(times)) AS b
         FROM log_chunks WHERE job_id = $1::uuid`,
        [jobId],
      );
      if (rows[0].b === null) continue;
      valueBytes[c] = (valueBytes[c] ?? 0) + Number(rows[0].b);
      valueLines[c] = (valueLines[c] ?? 0) + total;
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
  console.log(`| ${'what'.padEnd(36)} | batch | lines/s    | MiB/s  | vs dd | CPU s: node / PostgreSQL`);
  console.log(`|${'-'.repeat(38)}|-------|------------|--------|-------|-------------------------`);
  for (const [i, shape] of shapes.entries()) {
    const s = median(seconds[i]);
    console.log(
      `| ${shape.name.padEnd(36)} | ${String(shape.batch ?? '').padStart(5)} | ${String(i === 0 ? '' : Math.round(total / s)).padStart(10)} | ${(mib / s).toFixed(1).padStart(6)} | ${(dd / s).toFixed(2).padStart(5)} | ${i === 0 ? '' : `${cpu[i].node.toFixed(2)} / ${cpu[i].pg.toFixed(2)}`}`,
    );
  }
  // Rows: 2 batch sizes × rounds jobs; chunks: what is left after the archived ones were deleted.
  const legacyLines = 2 * rounds * total;
  const chunkLines = (4 * rounds - rounds) * total;
  console.log(
    `\nPostgreSQL bytes per stored line: rows ${(sizes.legacy_log_lines / legacyLines).toFixed(0)}, chunks ${(sizes.log_chunks / chunkLines).toFixed(0)} (line text ${lineBytes} bytes, ${values.text === 'words' ? 'words' : 'one repeated character'})`,
  );
  console.log(
    `chunk values per line (data, offsets, times as stored): ${Object.keys(valueBytes)
      .map((c) => `${c} ${(valueBytes[c] / valueLines[c]).toFixed(1)} B`)
      .join(', ')}; CPU s are per run (mean), PostgreSQL's from /proc of its backends`,
  );
  console.log(
    `load average (1 / 5 / 15 min) at the end: ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' / ')}`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
