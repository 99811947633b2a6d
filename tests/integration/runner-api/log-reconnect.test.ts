/**
 * Byte-exact logs through broken connections: a TCP proxy sits between the runner and the log
 * service and drops every connection several times while the job prints 20,000 lines (unicode,
 * long lines, empty lines); then the log service itself (a `solstice log-service` process) is
 * killed with SIGKILL mid-stream and started again. After the job the stored output equals what
 * the job printed, byte for byte: no line twice, none missing, none altered. The lines are
 * stored as chunks while the job runs and read back from the blob store after it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import fs from 'node:fs';
import path from 'node:path';
import { freePort } from '../../../platform/net';
import { CLI } from '../../support/cli';
import { logBlobKey } from '../../../activities/finalize-log';
import { makeRepo } from '../../support/git-repo';
import { startHarness, type Harness } from '../../support/harness';
import { startTcpProxy, type TcpProxy } from '../../support/tcp-proxy';

let h: Harness;
let proxy: TcpProxy;
/** Where the proxy sends runners: the harness's log service, or a separate process. */
let targetPort: number | undefined;

beforeAll(async () => {
  proxy = await startTcpProxy(() => ({ host: '127.0.0.1', port: targetPort ?? h.logService.port }));
  h = await startHarness({ contactAddr: proxy.address });
  await h.startWorker();
});

afterAll(async () => {
  await h?.close();
  await proxy?.close();
});

const LINES = 20_000;
const PARTS = 20;

/** Line i of the job's output: varied scripts, widths and lengths, deterministic. */
function line(i: number): string {
  if (i % 1999 === 0) return `${i} long ` + 'ü→日'.repeat(6000); // ~54 KiB, under the 64 KiB line limit
  if (i % 97 === 0) return '';
  if (i % 13 === 0) return `${i}\ttabs\tand 🚀 emoji 🧪 ${'x'.repeat(i % 500)}`;
  return `${i} line: Grüße, Ελληνικά, Русский, 中文, עברית ${'-'.repeat(i % 80)}`;
}

test('connections dropped mid-stream several times: the stored log equals the output byte for byte', async () => {
  const all = Array.from({ length: LINES }, (_, i) => line(i + 1));
  const perPart = LINES / PARTS;
  const files: Record<string, string> = {
    // Parts with pauses between them, so the stream is still going when the proxy drops it.
    '.solstice/job.sh': '#!/bin/sh\nfor f in out/part-*; do cat "$f"; sleep 0.3; done\n',
  };
  for (let p = 0; p < PARTS; p++) {
    const chunk = all.slice(p * perPart, (p + 1) * perPart);
    files[`out/part-${String(p).padStart(2, '0')}`] = chunk.map((l) => `${l}\n`).join('');
  }
  const printed = all.map((l) => `${l}\n`).join('');
  const repo = makeRepo(files);

  const { jobId, workflowId } = await h.enqueue(repo.dir, repo.sha);
  const done = h.result(workflowId, jobId);
  let finished = false;
  void done.then(
    () => (finished = true),
    () => (finished = true),
  );

  // Drop every connection each time another sixth of the lines is stored, while the job runs.
  const kills: number[] = [];
  const chunkCounts: { lines: number; chunks: number }[] = [];
  for (const threshold of [2000, 5000, 8000, 11000, 14000, 17000]) {
    while (!finished && (await h.jobs.countLogLines(jobId)) < threshold) {
      await new Promise((r) => setTimeout(r, 20));
    }
    if (finished) break;
    const n = proxy.killAll();
    if (n > 0) kills.push(threshold);
    // Stored as chunks of hundreds of lines, not a row a line.
    const chunks = await h.db.logChunk.count({ where: { jobId } });
    if (!finished) chunkCounts.push({ lines: await h.jobs.countLogLines(jobId), chunks });
  }

  const job = await done;
  expect(job.state).toBe('success');
  // The point of the test: the runner really lost its connection mid-stream, more than once.
  expect(kills.length).toBeGreaterThanOrEqual(3);
  expect(proxy.accepted).toBeGreaterThan(kills.length);
  for (const c of chunkCounts) expect(c.chunks).toBeLessThan(c.lines / 20);

  await expectStoredEquals(jobId, printed);
});

async function expectStoredEquals(jobId: string, printed: string): Promise<void> {
  // The job is final: its chunks left PostgreSQL and the log is read from the blob store.
  expect(await h.db.logChunk.count({ where: { jobId } })).toBe(0);
  const stored: { seq: number; stream: string; text: string }[] = [];
  for (let after = 0; ;) {
    const page = await h.jobs.logLinesAfter(jobId, after, 5000);
    if (page.length === 0) break;
    stored.push(...page);
    after = page[page.length - 1].seq;
  }
  // Sequence numbers dense from 1: nothing lost, nothing twice.
  expect(stored.map((l) => l.seq)).toEqual(stored.map((_, i) => i + 1));
  const stdout = stored
    .filter((l) => l.stream === 'stdout')
    .map((l) => `${l.text}\n`)
    .join('');
  expect(Buffer.from(stdout).equals(Buffer.from(printed))).toBe(true);

  // The final gzip log holds the same bytes between the runner's own lines.
  const blob = gunzipSync(
    fs.readFileSync(path.join(h.cfg.blobFsRoot, ...logBlobKey(jobId).split('/'))),
  ).toString();
  expect(blob.includes(printed)).toBe(true);
}

/** `solstice log-service` as its own process on `port`, resolved once it listens. */
async function logServiceProcess(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [CLI, 'log-service'], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      LOG_LEVEL: 'warn',
      DATABASE_URL: h.cfg.databaseUrl,
      TEMPORAL_ADDRESS: h.cfg.temporalAddress,
      BLOB_FS_ROOT: h.cfg.blobFsRoot,
      GRPC_ADDR: `127.0.0.1:${port}`,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('log service listening')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`log service exited with ${code} before listening`)));
  });
  return child;
}

test('the log service killed with SIGKILL mid-stream and started again: the stored log is byte-identical', async () => {
  const all = Array.from({ length: LINES }, (_, i) => line(i + 1));
  const perPart = LINES / PARTS;
  const files: Record<string, string> = {
    '.solstice/job.sh': '#!/bin/sh\nfor f in out/part-*; do cat "$f"; sleep 0.3; done\n',
  };
  for (let p = 0; p < PARTS; p++)
    files[`out/part-${String(p).padStart(2, '0')}`] = all
      .slice(p * perPart, (p + 1) * perPart)
      .map((l) => `${l}\n`)
      .join('');
  const printed = all.map((l) => `${l}\n`).join('');
  const repo = makeRepo(files);
  const children: ChildProcess[] = [];
  try {
    targetPort = await freePort();
    children.push(await logServiceProcess(targetPort));
    const { jobId, workflowId } = await h.enqueue(repo.dir, repo.sha);
    const done = h.result(workflowId, jobId);
    let finished = false;
    void done.then(
      () => (finished = true),
      () => (finished = true),
    );
    const kills: number[] = [];
    for (const threshold of [4000, 12000]) {
      while (!finished && (await h.jobs.countLogLines(jobId)) < threshold)
        await new Promise((r) => setTimeout(r, 20));
      if (finished) break;
      const victim = children[children.length - 1];
      const exited = new Promise((r) => victim.once('exit', r));
      victim.kill('SIGKILL');
      await exited;
      kills.push(threshold);
      // A new process on a new port (the old one's may linger); runners reconnect through the proxy.
      proxy.killAll();
      targetPort = await freePort();
      children.push(await logServiceProcess(targetPort));
    }
    const job = await done;
    expect(job.state).toBe('success');
    expect(kills).toEqual([4000, 12000]);
    await expectStoredEquals(jobId, printed);
  } finally {
    targetPort = undefined;
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}, 600_000);
