/** The log service's stream protocol over real gRPC and a real database. */
import * as grpc from '@grpc/grpc-js';
import {
  bearerMetadata,
  createRunnerServiceClient,
  type LogAck__Output,
  type LogLine,
  type StepResult,
} from '../../../model/runner-proto';
import { startHarness, type Harness } from '../../support/harness';
import { refuseLogText } from '../../support/database';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});

afterAll(async () => {
  await h?.close();
});

function lines(from: number, to: number): LogLine[] {
  return Array.from({ length: to - from + 1 }, (_, i) => ({
    seq: from + i,
    stream: 'LOG_STREAM_STDOUT',
    text: `line ${from + i}`,
    timeUnixMs: Date.now(),
  }));
}

/** Sends the batches in order, waiting for each ack, then half-closes and waits for the status. */
async function stream(
  jobId: string,
  token: string,
  batches: LogLine[][],
): Promise<{ acks: number[]; status: grpc.status }> {
  const client = createRunnerServiceClient(h.logService.address);
  const call = client.StreamLogs(bearerMetadata(token));
  const acks: number[] = [];
  let onAck: (() => void) | undefined;
  call.on('data', (ack: LogAck__Output) => {
    acks.push(ack.persistedThroughSeq);
    onAck?.();
  });
  const status = new Promise<grpc.status>((resolve) => {
    call.on('status', (s: grpc.StatusObject) => resolve(s.code));
    call.on('error', () => undefined);
  });
  for (const b of batches) {
    const acked = new Promise<void>((r) => (onAck = r));
    call.write({ jobId, lines: b });
    await Promise.race([acked, status]);
  }
  call.end();
  const code = await status;
  client.close();
  return { acks, status: code };
}

test('stores each line once, in order, skipping resends and refusing gaps; a half-close ends the call OK', async () => {
  const jobId = await h.jobWithToken('tok-a');
  const r = await stream(jobId, 'tok-a', [lines(1, 3), lines(2, 5), lines(7, 8), lines(6, 8)]);
  expect(r.acks).toEqual([3, 5, 5, 8]);
  expect(r.status).toBe(grpc.status.OK);
  const stored = await h.jobs.logLinesAfter(jobId, 0, 100);
  expect(stored.map((l) => l.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  expect(stored.map((l) => l.text)).toEqual(lines(1, 8).map((l) => l.text));

  // A new stream (a reconnecting runner) resumes from what is stored.
  const again = await stream(jobId, 'tok-a', [lines(5, 10)]);
  expect(again.acks).toEqual([10]);
  expect(await h.jobs.countLogLines(jobId)).toBe(10);
});

test('NUL bytes from a runner that did not replace them are stored as U+FFFD, not refused', async () => {
  const jobId = await h.jobWithToken('tok-nul');
  const batch = lines(1, 2).map((l, i) => ({ ...l, text: i === 0 ? 'a\0b' : '\0' }));
  const r = await stream(jobId, 'tok-nul', [batch]);
  expect(r).toEqual({ acks: [2], status: grpc.status.OK });
  expect((await h.jobs.logLinesAfter(jobId, 0, 10)).map((l) => l.text)).toEqual(['a\uFFFDb', '\uFFFD']);
});

test('a line the database refuses for good ends the stream with INVALID_ARGUMENT naming it, after storing the lines before it', async () => {
  const allowAgain = await refuseLogText(h.db, 'refuse me');
  try {
    const jobId = await h.jobWithToken('tok-refused');
    const client = createRunnerServiceClient(h.logService.address);
    const call = client.StreamLogs(bearerMetadata('tok-refused'));
    call.on('data', () => undefined);
    const status = new Promise<grpc.StatusObject>((resolve) => {
      call.on('status', resolve);
      call.on('error', () => undefined);
    });
    const batch = lines(1, 3).map((l, i) => ({ ...l, text: i === 1 ? 'refuse me' : l.text }));
    call.write({ jobId, lines: batch });
    const s = await status;
    client.close();
    expect(s.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(s.metadata.get('solstice-refused-seqs')).toEqual(['2-2']);
    expect((await h.jobs.logLinesAfter(jobId, 0, 10)).map((l) => l.seq)).toEqual([1]);
  } finally {
    await allowAgain();
  }
});

test("a stream with another job's token is refused and stores nothing", async () => {
  await h.jobWithToken('tok-b');
  const other = await h.jobWithToken('tok-c');
  const r = await stream(other, 'tok-b', [lines(1, 2)]);
  expect(r.status).toBe(grpc.status.PERMISSION_DENIED);
  const unknown = await stream(other, 'nope', [lines(1, 2)]);
  expect(unknown.status).toBe(grpc.status.UNAUTHENTICATED);
  expect(await h.jobs.countLogLines(other)).toBe(0);
});

test('batches that arrive while a store runs are stored together: fewer acks, the last one covers all', async () => {
  const jobId = await h.jobWithToken('tok-d');
  const client = createRunnerServiceClient(h.logService.address);
  const call = client.StreamLogs(bearerMetadata('tok-d'));
  const acks: number[] = [];
  call.on('data', (ack: LogAck__Output) => acks.push(ack.persistedThroughSeq));
  const status = new Promise<grpc.status>((resolve) => {
    call.on('status', (s: grpc.StatusObject) => resolve(s.code));
    call.on('error', () => undefined);
  });
  // Forty batches without waiting for acks, as a runner with a backlog sends them.
  const batches = 40;
  for (let b = 0; b < batches; b++) call.write({ jobId, lines: lines(b * 100 + 1, b * 100 + 100) });
  call.end();
  expect(await status).toBe(grpc.status.OK);
  client.close();
  expect(acks.length).toBeLessThan(batches);
  expect(acks[acks.length - 1]).toBe(batches * 100);
  expect(acks).toEqual([...acks].sort((a, b) => a - b));
  const stored = await h.jobs.logLinesAfter(jobId, 0, 10_000);
  expect(stored.map((l) => l.text)).toEqual(lines(1, batches * 100).map((l) => l.text));
});

test('ReportStep records a step as running, then ended; a late start never undoes an end', async () => {
  const jobId = await h.jobWithToken('tok-steps');
  const client = createRunnerServiceClient(h.logService.address);
  const report = (step: StepResult) =>
    new Promise<grpc.status>((resolve) =>
      client.ReportStep({ jobId, step, total: 2 }, bearerMetadata('tok-steps'), (err) =>
        resolve(err ? err.code : grpc.status.OK),
      ),
    );
  const started = { index: 1, name: 'build', startedUnixMs: Date.now(), firstSeq: 3 };
  expect(await report(started)).toBe(grpc.status.OK);
  expect(await h.jobs.listSteps(jobId)).toMatchObject([
    {
      index: 1,
      name: 'build',
      outcome: 'running',
      exitCode: null,
      durationMs: null,
      firstSeq: 3,
      lastSeq: null,
    },
  ]);
  const ended = {
    ...started,
    outcome: 'STEP_OUTCOME_FAILURE' as const,
    exitCode: 2,
    durationMs: 1500,
    lastSeq: 9,
  };
  expect(await report(ended)).toBe(grpc.status.OK);
  expect(await report(started)).toBe(grpc.status.OK);
  expect(await h.jobs.listSteps(jobId)).toMatchObject([
    { index: 1, outcome: 'failure', exitCode: 2, durationMs: 1500, lastSeq: 9 },
  ]);
  // Another job's token cannot report for this one.
  const other = await h.jobWithToken('tok-steps-other');
  expect(
    await new Promise<grpc.status>((resolve) =>
      client.ReportStep({ jobId: other, step: started, total: 1 }, bearerMetadata('tok-steps'), (err) =>
        resolve(err ? err.code : grpc.status.OK),
      ),
    ),
  ).toBe(grpc.status.PERMISSION_DENIED);
  expect(await h.jobs.listSteps(other)).toEqual([]);
  client.close();
});

test('a batch claiming another job is refused with PERMISSION_DENIED, grouped with good batches or not', async () => {
  const mine = await h.jobWithToken('tok-group-mine');
  const other = await h.jobWithToken('tok-group-other');
  const client = createRunnerServiceClient(h.logService.address);
  const call = client.StreamLogs(bearerMetadata('tok-group-mine'));
  call.on('data', () => undefined);
  const status = new Promise<grpc.status>((resolve) => {
    call.on('status', (s: grpc.StatusObject) => resolve(s.code));
    call.on('error', () => undefined);
  });
  // Written back to back, so they may well reach the service as one group.
  for (let b = 0; b < 10; b++) call.write({ jobId: mine, lines: lines(b * 10 + 1, b * 10 + 10) });
  call.write({ jobId: other, lines: lines(1, 10) });
  call.end();
  expect(await status).toBe(grpc.status.PERMISSION_DENIED);
  client.close();
  expect(await h.jobs.countLogLines(other)).toBe(0);
});
