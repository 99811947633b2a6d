import { DEFAULT_BACKOFF } from '../../../runner/backoff';
import {
  createRunnerServiceClient,
  bearerMetadata,
  type RunnerServiceClient,
} from '../../../model/runner-proto';
import { JobTokenRejectedError, LogServiceUnavailableError } from '../../../runner/errors';
import { LogBuffer } from '../../../runner/log/buffer';
import { DEFAULT_BATCH, LogShipper, type ShipperSettings } from '../../../runner/log/shipper';
import { FakeLogService, type FakeLogServiceOptions } from './runner-fake-log-service';

const TOKEN = 'shipper-token';
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});
// Reconnect notes go to stderr; keep the test output readable.
beforeAll(() => jest.spyOn(process.stderr, 'write').mockImplementation(() => true));
afterAll(() => jest.restoreAllMocks());

async function setup(
  opts: Partial<FakeLogServiceOptions> = {},
  settings: Partial<ShipperSettings> = {},
  token = TOKEN,
): Promise<{ svc: FakeLogService; buffer: LogBuffer; shipper: LogShipper; client: RunnerServiceClient }> {
  const svc = new FakeLogService({ token: TOKEN, ...opts });
  const addr = await svc.start();
  const client = createRunnerServiceClient(addr);
  cleanups.push(
    () => svc.stop(),
    () => client.close(),
  );
  const buffer = new LogBuffer({ firstSeq: 1 });
  const shipper = new LogShipper(client, () => bearerMetadata(token), buffer, {
    address: addr,
    jobId: 'job',
    batch: DEFAULT_BATCH,
    flushIntervalMs: 50,
    ackTimeoutMs: 30_000,
    retryForMs: 10_000,
    backoff: { initialMs: 20, maxMs: 200 },
    ...settings,
  });
  return { svc, buffer, shipper, client };
}

describe('LogShipper', () => {
  test('sends full batches by line count', async () => {
    const { svc, buffer, shipper } = await setup();
    for (let i = 0; i < 1200; i++) buffer.append('LOG_STREAM_STDOUT', `l${i}`);
    buffer.close();
    await shipper.run();
    expect(svc.batchSizes).toEqual([0, 500, 500, 200]); // an empty opening batch, then full ones
    expect(svc.stored.size).toBe(1200);
  });

  test('flushes a lone line after the flush interval, without waiting for more', async () => {
    const { svc, buffer, shipper } = await setup();
    const running = shipper.run();
    buffer.append('LOG_STREAM_STDOUT', 'just one');
    await new Promise((r) => setTimeout(r, 400));
    expect(svc.texts()).toEqual(['just one']);
    expect(buffer.ackedThrough).toBe(1);
    buffer.close();
    await running;
  });

  test('a stream that never acknowledges is abandoned after ackTimeoutMs and the lines resent', async () => {
    const { svc, buffer, shipper } = await setup({ silentFirstStream: true }, { ackTimeoutMs: 300 });
    for (let i = 0; i < 10; i++) buffer.append('LOG_STREAM_STDOUT', `l${i}`);
    buffer.close();
    await shipper.run();
    expect(svc.streamCalls).toBe(2);
    expect(svc.texts()).toEqual(Array.from({ length: 10 }, (_, i) => `l${i}`));
  });

  test('a quiet job still learns about a rejected token from the opening batch', async () => {
    const { svc, buffer, shipper } = await setup({}, {}, 'wrong');
    const running = shipper.run();
    await expect(running).rejects.toBeInstanceOf(JobTokenRejectedError);
    expect(svc.authFailures).toEqual(['StreamLogs']);
    expect(buffer.lastSeq).toBe(0);
  });

  test('a line the service refuses for good becomes a notice and the log goes on', async () => {
    const { svc, buffer, shipper } = await setup({ refuse: /^refuse me$/ });
    for (const t of ['before', 'refuse me', 'after']) buffer.append('LOG_STREAM_STDOUT', t);
    buffer.close();
    await shipper.run();
    expect(svc.texts()).toEqual([
      'before',
      '[solstice: the log service refused this line for good and it was not stored: refused (test)]',
      'after',
    ]);
    expect(svc.streamCalls).toBe(2);
  });

  test('a refused notice is not retried: the stream ends with the error', async () => {
    const { svc, buffer, shipper } = await setup({ refuse: /refuse/ });
    buffer.append('LOG_STREAM_STDOUT', 'refuse me');
    buffer.close();
    await expect(shipper.run()).rejects.toThrow(/INVALID_ARGUMENT/);
    expect(svc.streamCalls).toBe(2);
  });

  test('a rejected token on the stream is fatal', async () => {
    const { buffer, shipper } = await setup({}, {}, 'wrong');
    buffer.append('LOG_STREAM_STDOUT', 'x');
    buffer.close();
    await expect(shipper.run()).rejects.toBeInstanceOf(JobTokenRejectedError);
  });

  test('gives up when the service stays unreachable past the retry budget', async () => {
    const { svc, buffer, shipper } = await setup({}, { retryForMs: 500, backoff: DEFAULT_BACKOFF });
    svc.stop();
    buffer.append('LOG_STREAM_STDOUT', 'x');
    buffer.close();
    const t0 = Date.now();
    await expect(shipper.run()).rejects.toBeInstanceOf(LogServiceUnavailableError);
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});
