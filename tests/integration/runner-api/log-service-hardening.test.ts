/**
 * The log service's hardening over real gRPC and a real database: the job token is checked on
 * every batch (revoked, replaced and other-job tokens stop a running stream), the message size
 * limit comes from the settings, and grpc.health.v1 reports the database's readiness.
 */
import * as grpc from '@grpc/grpc-js';
import { service as healthServiceDefinition } from 'grpc-health-check';
import { hashJobToken } from '../../../model/job-token';
import { createLogger } from '../../../platform/logger';
import { freePort } from '../../../platform/net';
import {
  bearerMetadata,
  createRunnerServiceClient,
  RUNNER_SERVICE_NAME,
  type LogAck__Output,
  type LogLine,
} from '../../../model/runner-proto';
import { databaseCheck, temporalCheck } from '../../../runner-api/health';
import { startLogService, type RunningLogService } from '../../../runner-api/server';
import { createTestDatabase } from '../../support/database';
import { startHarness, type Harness } from '../../support/harness';
import { FsBlobStore } from '../../../storage/blob-store';
import { artifactLimits } from '../../../runner-api/artifacts';

let h: Harness;
const services: RunningLogService[] = [];
const log = createLogger('test');
log.level = 'silent';

beforeAll(async () => {
  h = await startHarness();
});

afterAll(async () => {
  await Promise.all(services.map((s) => s.close()));
  await h?.close();
});

async function service(
  extra: Partial<Parameters<typeof startLogService>[1]> = {},
): Promise<RunningLogService> {
  const s = await startLogService('127.0.0.1:0', {
    jobs: h.jobs,
    temporal: h.client,
    log,
    blobs: new FsBlobStore(h.cfg.blobFsRoot),
    artifactLimits: artifactLimits(h.cfg),
    ...extra,
  });
  services.push(s);
  return s;
}

function lines(from: number, to: number, text = (i: number) => `line ${i}`): LogLine[] {
  return Array.from({ length: to - from + 1 }, (_, i) => ({
    seq: from + i,
    stream: 'LOG_STREAM_STDOUT',
    text: text(from + i),
    timeUnixMs: Date.now(),
  }));
}

/** One open stream: send a batch and get its ack, or the status the server ended the call with. */
function openStream(address: string, token: string) {
  const client = createRunnerServiceClient(address);
  const call = client.StreamLogs(bearerMetadata(token));
  const events: ({ ack: number } | { status: grpc.StatusObject })[] = [];
  let wake: (() => void) | undefined;
  call.on('data', (a: LogAck__Output) => {
    events.push({ ack: a.persistedThroughSeq });
    wake?.();
  });
  call.on('status', (s: grpc.StatusObject) => {
    events.push({ status: s });
    wake?.();
  });
  call.on('error', () => undefined);
  return {
    async send(jobId: string, batch: LogLine[]): Promise<number | grpc.StatusObject> {
      const before = events.length;
      call.write({ jobId, lines: batch });
      while (events.length === before) await new Promise<void>((r) => (wake = r));
      const e = events[before];
      return 'ack' in e ? e.ack : e.status;
    },
    close() {
      call.cancel();
      client.close();
    },
  };
}

describe('the token is checked on every batch', () => {
  test('a job that ends mid-stream: the next batch is refused and nothing more is stored', async () => {
    const s = await service({ tokenCacheMs: 0 });
    const jobId = await h.jobWithToken('tok-end');
    const stream = openStream(s.address, 'tok-end');
    expect(await stream.send(jobId, lines(1, 3))).toBe(3);
    await h.jobs.finalize(jobId, { state: 'cancelled' });
    const refused = await stream.send(jobId, lines(4, 6));
    expect(refused).toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    stream.close();
    expect(await h.jobs.countLogLines(jobId)).toBe(3);
  });

  test('a new machine attempt replaces the token: the old runner is refused on its next batch', async () => {
    const s = await service({ tokenCacheMs: 0 });
    const jobId = await h.jobWithToken('tok-old');
    const stream = openStream(s.address, 'tok-old');
    expect(await stream.send(jobId, lines(1, 2))).toBe(2);
    await h.jobs.beginAttempt(jobId, 2, hashJobToken('tok-new'));
    expect(await stream.send(jobId, lines(3, 4))).toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    stream.close();
    expect(await h.jobs.countLogLines(jobId)).toBe(2);
  });

  test('a token stops at its expiry time even while its job still runs, and the cache does not outlive it', async () => {
    // The default cache: a lookup reused for 2 s must still end at the expiry.
    const s = await service();
    const jobId = await h.jobWithToken('tok-expiring');
    await h.jobs.beginAttempt(jobId, 1, hashJobToken('tok-expiring'), new Date(Date.now() + 1500));
    await h.jobs.markRunning(jobId);
    const stream = openStream(s.address, 'tok-expiring');
    expect(await stream.send(jobId, lines(1, 2))).toBe(2);
    await new Promise((r) => setTimeout(r, 1600));
    expect(await stream.send(jobId, lines(3, 4))).toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    stream.close();
    expect(await h.jobs.countLogLines(jobId)).toBe(2);
    expect((await h.jobs.getJob(jobId))?.state).toBe('running');
    // Already expired when minted: refused from the first batch.
    const late = await h.jobWithToken('tok-late');
    await h.jobs.beginAttempt(late, 1, hashJobToken('tok-late'), new Date(Date.now() - 1));
    const refused = openStream(s.address, 'tok-late');
    expect(await refused.send(late, lines(1, 1))).toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    refused.close();
  });

  test('a batch claiming another job is refused even on a stream that began with the right one', async () => {
    const s = await service({ tokenCacheMs: 0 });
    const mine = await h.jobWithToken('tok-mine');
    const other = await h.jobWithToken('tok-other');
    const stream = openStream(s.address, 'tok-mine');
    expect(await stream.send(mine, lines(1, 1))).toBe(1);
    expect(await stream.send(other, lines(1, 1))).toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    stream.close();
    expect(await h.jobs.countLogLines(other)).toBe(0);
  });

  test('with the default cache a revoked token still stops the stream within the cache time', async () => {
    const s = await service();
    const jobId = await h.jobWithToken('tok-cached');
    const stream = openStream(s.address, 'tok-cached');
    expect(await stream.send(jobId, lines(1, 1))).toBe(1);
    await h.jobs.finalize(jobId, { state: 'success' });
    let seq = 2;
    let result: number | grpc.StatusObject = 0;
    const deadline = Date.now() + 30_000;
    while (typeof result === 'number' && Date.now() < deadline) {
      result = await stream.send(jobId, lines(seq, seq));
      if (typeof result === 'number') seq++;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(result).toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    stream.close();
  });
});

test('a batch over the configured message size is refused with RESOURCE_EXHAUSTED', async () => {
  const s = await service({
    server: { keepaliveTimeMs: 20_000, keepaliveTimeoutMs: 10_000, maxMessageBytes: 64 * 1024 },
  });
  const jobId = await h.jobWithToken('tok-size');
  const stream = openStream(s.address, 'tok-size');
  expect(await stream.send(jobId, lines(1, 10))).toBe(10);
  const big = await stream.send(
    jobId,
    lines(11, 12, () => 'x'.repeat(40 * 1024)),
  );
  expect(big).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
  stream.close();
  expect(await h.jobs.countLogLines(jobId)).toBe(10);
});

describe('grpc.health.v1', () => {
  const HealthClient = grpc.makeGenericClientConstructor(
    healthServiceDefinition as unknown as grpc.ServiceDefinition,
    'Health',
  );

  async function check(address: string, serviceName: string): Promise<string> {
    const client = new HealthClient(address, grpc.credentials.createInsecure());
    try {
      return await new Promise<string>((resolve, reject) =>
        (
          client as unknown as {
            check(
              req: { service: string },
              cb: (err: grpc.ServiceError | null, res?: { status: string | number }) => void,
            ): void;
          }
        ).check({ service: serviceName }, (err, res) => (err ? reject(err) : resolve(String(res?.status)))),
      );
    } finally {
      client.close();
    }
  }

  test('SERVING while PostgreSQL and Temporal answer; NOT_SERVING once PostgreSQL is unreachable', async () => {
    const db = await createTestDatabase();
    let dropped = false;
    try {
      const s = await service({ readiness: [databaseCheck(db.url), temporalCheck(h.client)] });
      expect(await check(s.address, '')).toBe('SERVING');
      expect(await check(s.address, RUNNER_SERVICE_NAME)).toBe('SERVING');
      await db.drop();
      dropped = true;
      await s.health.refresh(); // what the periodic check does, without waiting for it
      expect(await check(s.address, '')).toBe('NOT_SERVING');
      expect(await check(s.address, RUNNER_SERVICE_NAME)).toBe('NOT_SERVING');
    } finally {
      if (!dropped) await db.drop();
    }
  });

  test('a database on a port where nothing listens: NOT_SERVING from the start', async () => {
    const port = await freePort();
    const s = await service({
      readiness: [databaseCheck(`postgresql://postgres@127.0.0.1:${port}/none`), temporalCheck(h.client)],
    });
    expect(await check(s.address, '')).toBe('NOT_SERVING');
  });
});
