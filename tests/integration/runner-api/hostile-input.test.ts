/**
 * Issue 21, the runner side: what a job script or a hand-written gRPC client sends is bounded
 * at the boundary. A step index past int32 is INVALID_ARGUMENT with no server internals; an
 * internal failure reaches the client as a correlation id only; lines after FinishJob's last
 * line are refused; hard links and special files are not artifacts; an artifact URL with
 * NUL answers 400, not 500.
 */
import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import {
  bearerMetadata,
  createRunnerServiceClient,
  type LogAck__Output,
  type LogLine,
} from '../../../model/runner-proto';
import { createLogger } from '../../../platform/logger';
import { FsBlobStore } from '../../../storage/blob-store';
import { startJobPage, type RunningJobPage } from '../../../web/job-page/server';
import { makeRepo } from '../../support/git-repo';
import { startHarness, type Harness } from '../../support/harness';

let h: Harness;
let page: RunningJobPage;

beforeAll(async () => {
  h = await startHarness();
  await h.startWorker();
  const log = createLogger('test');
  log.level = 'silent';
  page = await startJobPage({
    addr: '127.0.0.1:0',
    jobs: h.jobs,
    blobs: new FsBlobStore(h.cfg.blobFsRoot),
    log,
  });
});

afterAll(async () => {
  await page?.close();
  await h?.close();
});

type Unary = (req: unknown, md: grpc.Metadata, cb: (err: grpc.ServiceError | null) => void) => void;
function call(
  method: 'ReportStep' | 'FinishJob',
  token: string,
  req: unknown,
): Promise<grpc.ServiceError | null> {
  const client = createRunnerServiceClient(h.logService.address);
  const fn = (client as unknown as Record<string, Unary>)[method].bind(client);
  return new Promise((resolve) =>
    fn(req, bearerMetadata(token), (err) => {
      client.close();
      resolve(err);
    }),
  );
}

function lines(from: number, to: number): LogLine[] {
  return Array.from({ length: to - from + 1 }, (_, i) => ({
    seq: from + i,
    stream: 'LOG_STREAM_STDOUT',
    text: `line ${from + i}`,
    timeUnixMs: Date.now(),
  }));
}

/** Sends one batch on a fresh stream: its ack, or the status the server ended the call with. */
function sendBatch(token: string, jobId: string, batch: LogLine[]): Promise<number | grpc.StatusObject> {
  const client = createRunnerServiceClient(h.logService.address);
  const stream = client.StreamLogs(bearerMetadata(token));
  return new Promise((resolve) => {
    stream.on('data', (a: LogAck__Output) => {
      resolve(Number(a.persistedThroughSeq));
      stream.cancel();
      client.close();
    });
    stream.on('status', (s: grpc.StatusObject) => {
      resolve(s);
      client.close();
    });
    stream.on('error', () => undefined);
    stream.write({ jobId, lines: batch });
  });
}

const step = (index: number) => ({ index, name: 's', outcome: 'STEP_OUTCOME_UNSPECIFIED' });

test('ReportStep with step index 4294967295 is INVALID_ARGUMENT, and says nothing of the server', async () => {
  const jobId = await h.jobWithToken('tok-index');
  const err = await call('ReportStep', 'tok-index', { jobId, step: step(4294967295), total: 1 });
  expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
  expect(err?.details).not.toMatch(/prisma|invocation|\/work|\.ts|\.js/i);
  expect(await call('ReportStep', 'tok-index', { jobId, step: step(1), total: 4294967295 })).toMatchObject({
    code: grpc.status.INVALID_ARGUMENT,
  });
});

test('an internal failure reaches the runner as a correlation id, its text stays in the server log', async () => {
  // The job has no workflow: signalling it fails inside the service.
  const jobId = await h.jobWithToken('tok-internal');
  const err = await call('FinishJob', 'tok-internal', {
    jobId,
    lastSeq: 0,
    reason: 'FINISH_REASON_EXITED',
    steps: [],
  });
  expect(err?.code).toBe(grpc.status.UNAVAILABLE);
  expect(err?.details).toMatch(/^log service could not complete the call \(ref [0-9a-f-]{36}\)/);
  expect(err?.details).not.toMatch(/workflow|not found|test\//i);
});

test('lines after FinishJob are refused: the stored log ends where the runner said it ends', async () => {
  const jobId = await h.jobWithToken('tok-finish');
  expect(await sendBatch('tok-finish', jobId, lines(1, 3))).toBe(3);
  // FinishJob's signal fails (no workflow), but the runner has declared its last line.
  await call('FinishJob', 'tok-finish', { jobId, lastSeq: 3, reason: 'FINISH_REASON_EXITED', steps: [] });
  expect(await sendBatch('tok-finish', jobId, lines(4, 5))).toMatchObject({
    code: grpc.status.FAILED_PRECONDITION,
  });
  expect(await h.jobs.countLogLines(jobId)).toBe(3);
});

test('hard links and special files in the workspace are skipped with a note, regular files uploaded', async () => {
  const hostFile = `${h.workspaceRoot}-host-secret`;
  fs.writeFileSync(hostFile, 'host secret\n');
  try {
    const repo = makeRepo({ 'README.md': 'x\n' });
    const { jobId, workflowId } = await h.startJobWith(
      repo,
      {
        env: { HOST_FILE: hostFile },
        steps: [
          {
            name: 'make',
            run: 'mkdir -p out && ln "$HOST_FILE" out/linked.txt && mkfifo out/pipe && echo ok > out/real.txt',
            continueOnError: false,
          },
        ],
        artifacts: ['out/*'],
      },
      'test-hostile-artifacts',
    );
    const job = await h.result(workflowId, jobId);
    expect(job.state).toBe('success');
    const log = (await h.jobs.logLinesAfter(jobId, 0, 10_000)).map((l) => l.text);
    expect(log).toContain(
      'artifact out/linked.txt skipped: it is a hard link (2 links); copy the file instead',
    );
    expect(log.some((l) => l.startsWith('artifact out/real.txt uploaded'))).toBe(true);
    const res = await fetch(`${page.url}/jobs/${jobId}/artifacts/out/linked.txt`);
    expect(res.status).toBe(404);
    const nul = await fetch(`${page.url}/jobs/${jobId}/artifacts/out/real.txt%00.png`);
    expect(nul.status).toBe(400);
    fs.rmSync(repo.dir, { recursive: true, force: true });
  } finally {
    fs.rmSync(hostFile, { force: true });
  }
});
