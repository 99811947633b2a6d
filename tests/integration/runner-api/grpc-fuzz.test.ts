/**
 * Issue 21: a bounded mutation fuzz of the runner RPCs over real gRPC and a real database.
 * 1,000 hostile ReportStep, FinishJob and StreamLogs messages, with the job's token: every
 * answer is a status the runner can act on, none carries the server's internals, and the
 * service still answers a valid call afterwards.
 */
import * as grpc from '@grpc/grpc-js';
import {
  bearerMetadata,
  createRunnerServiceClient,
  type RunnerServiceClient,
} from '../../../model/runner-proto';
import { startHarness, type Harness } from '../../support/harness';
import { seededRandom } from '../../support/seeded-random';

let h: Harness;
let client: RunnerServiceClient;

beforeAll(async () => {
  h = await startHarness();
  client = createRunnerServiceClient(h.logService.address);
});

afterAll(async () => {
  client?.close();
  await h?.close();
});

const NUMBERS = [0, 1, 2, -1, 4294967295, 2147483647, 2147483648, 65535, 100_001, Number.MAX_SAFE_INTEGER];
const STRINGS = [
  '',
  'x',
  '\u0000',
  '../../etc/passwd',
  'x'.repeat(70_000),
  '\u202e',
  'STEP_OUTCOME_PASSED',
  "'; DROP TABLE jobs; --",
];

const ALLOWED = new Set([
  grpc.status.OK,
  grpc.status.INVALID_ARGUMENT,
  grpc.status.FAILED_PRECONDITION,
  grpc.status.UNAUTHENTICATED,
  grpc.status.PERMISSION_DENIED,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.UNAVAILABLE,
]);
const INTERNALS = /prisma|invocation|\/work\/|node_modules|\.ts:\d|\.js:\d|at \w+ \(|constraint|column/i;

type Unary = (
  req: unknown,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null) => void,
) => void;

function unary(
  method: 'ReportStep' | 'FinishJob',
  token: string,
  req: unknown,
): Promise<{ code: number; details: string }> {
  const fn = (client as unknown as Record<string, Unary>)[method].bind(client);
  return new Promise((resolve) =>
    fn(req, bearerMetadata(token), { deadline: Date.now() + 20_000 }, (err) =>
      resolve(err ? { code: err.code, details: err.details } : { code: grpc.status.OK, details: '' }),
    ),
  );
}

function stream(token: string, batch: unknown): Promise<{ code: number; details: string }> {
  const call = client.StreamLogs(bearerMetadata(token), { deadline: Date.now() + 20_000 });
  return new Promise((resolve) => {
    call.on('data', () => {
      call.cancel();
      resolve({ code: grpc.status.OK, details: '' });
    });
    call.on('status', (s: grpc.StatusObject) => resolve({ code: s.code, details: s.details }));
    call.on('error', () => undefined);
    // Deliberately not a LogBatch: wrong types are part of the fuzz (the client encodes what it can).
    call.write(batch as never);
  });
}

test('1,000 mutated runner messages: every answer is a proper status without internals', async () => {
  const rnd = seededRandom(21);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const tokens = ['fuzz-a', 'fuzz-b'];
  const jobs = [await h.jobWithToken(tokens[0]), await h.jobWithToken(tokens[1])];
  const value = () => (rnd() < 0.5 ? pick(NUMBERS) : pick(STRINGS));
  const codes = new Map<number, number>();
  const cases = Array.from({ length: 1000 }, (_, i) => i);
  // Calls in flight at once: the service must hold under concurrent garbage too.
  const worker = async () => {
    for (let i = cases.shift(); i !== undefined; i = cases.shift()) {
      const t = Math.floor(rnd() * 2);
      const token = rnd() < 0.1 ? 'not-a-token' : tokens[t];
      const jobId = rnd() < 0.1 ? pick(STRINGS) : jobs[rnd() < 0.9 ? t : 1 - t];
      const kind = i % 3;
      let r: { code: number; details: string };
      if (kind === 0) {
        r = await unary('ReportStep', token, {
          jobId,
          total: rnd() < 0.5 ? pick(NUMBERS) : 3,
          step:
            rnd() < 0.1
              ? undefined
              : {
                  index: pick(NUMBERS),
                  name: pick(STRINGS),
                  outcome: pick(['STEP_OUTCOME_PASSED', 'STEP_OUTCOME_UNSPECIFIED', 7]),
                  exitCode: value(),
                },
        }).catch(() => ({ code: grpc.status.INVALID_ARGUMENT, details: 'client refused to encode' }));
      } else if (kind === 1) {
        r = await unary('FinishJob', token, {
          jobId,
          lastSeq: pick(NUMBERS),
          reason: pick(['FINISH_REASON_EXITED', 'FINISH_REASON_UNSPECIFIED', 99]),
          exitCode: pick(NUMBERS),
          message: pick(STRINGS),
          steps: rnd() < 0.5 ? [] : [{ index: pick(NUMBERS), name: pick(STRINGS) }],
        }).catch(() => ({ code: grpc.status.INVALID_ARGUMENT, details: 'client refused to encode' }));
      } else {
        r = await stream(token, {
          jobId,
          lines: Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => ({
            seq: pick(NUMBERS),
            stream: pick(['LOG_STREAM_STDOUT', 'LOG_STREAM_STDERR', 42]),
            text: pick(STRINGS),
            timeUnixMs: pick(NUMBERS),
          })),
        }).catch(() => ({ code: grpc.status.INVALID_ARGUMENT, details: 'client refused to encode' }));
      }
      codes.set(r.code, (codes.get(r.code) ?? 0) + 1);
      if (!ALLOWED.has(r.code) || INTERNALS.test(r.details))
        throw new Error(`case ${i}: status ${grpc.status[r.code]} "${r.details.slice(0, 300)}"`);
      if (r.code === grpc.status.UNAVAILABLE && !/\(ref [0-9a-f-]{36}\)/.test(r.details))
        throw new Error(`case ${i}: UNAVAILABLE without a correlation id: "${r.details.slice(0, 300)}"`);
    }
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: 16 }, worker));
  process.stdout.write(
    `grpc fuzz: 1000 cases in ${Date.now() - started} ms: ${JSON.stringify([...codes])}\n`,
  );
  expect([...codes.values()].reduce((a, b) => a + b, 0)).toBe(1000);
  // Still serving: a valid step report of a fresh job.
  const fresh = await h.jobWithToken('fuzz-after');
  expect(
    await unary('ReportStep', 'fuzz-after', {
      jobId: fresh,
      total: 1,
      step: { index: 1, name: 'ok', outcome: 'STEP_OUTCOME_PASSED' },
    }),
  ).toEqual({ code: grpc.status.OK, details: '' });
}, 90_000);
