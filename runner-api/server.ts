/**
 * The log service: the gRPC endpoint runners stream to. It authenticates each call with the
 * per-job token, stores log lines (see ingest.ts), and tells the job's workflow when the
 * runner started and finished. The finished signal is sent only once every line up to the
 * runner's last sequence number is stored, so a workflow never finalizes a partial log.
 *
 * Hardening: every call, and every group of log batches before it is stored, re-checks the job
 * token (through a short cache); work stops when the runner cancels a call or its deadline
 * passes; keepalive, message size and TLS come from the configuration; `grpc.health.v1`
 * reports readiness (see health.ts).
 * Artifact uploads are handled in artifacts.ts.
 * Every call is a server span continuing the runner's trace (traceparent in the call metadata).
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { context, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import type { Client } from '@temporalio/client';
import { ArtifactStore } from '../storage/artifact-store';
import type { BlobStore } from '../storage/blob-store';
import { effectiveDatabaseUrl, type Config } from '../platform/config';
import { AuthError, ConfigError, ForbiddenError } from '../platform/errors';
import type { JobStore, StepOutcome, StepReport } from '../storage/job-store';
import type { Logger } from '../platform/logger';
import { instruments } from '../platform/metrics';
import { ATTR } from '../model/span-attributes';
import { extractTraceContext, tracer } from '../platform/telemetry';
import {
  runnerServiceDefinition,
  type FinishJobRequest__Output,
  type LogAck,
  type LogBatch__Output,
  type ReportStepRequest__Output,
  type RunnerServiceHandlers,
  type StepResult__Output,
  type WaitForAssignmentRequest__Output,
  type WaitForAssignmentResponse,
  bearerTokenFrom,
} from '../model/runner-proto';
import { hashJobToken } from '../model/job-token';
import { PoolStore } from '../capacity/pool-store';
import { runnerFinishedSignal, runnerStartedSignal, runnerStepSignal } from '../workflows/signals';
import type { FinishReason } from '../model/domain';
import { SecretMasker } from '../model/secret-mask';
import { SecretStore } from '../storage/secret-store';
import { gitAuthHeader } from '../forges/git-credential';
import { ArtifactRefusedError, uploadArtifactHandler, type ArtifactLimits } from './artifacts';
import { authenticate, TokenCache, TOKEN_CACHE_MS, type AuthenticatedJob } from './auth';
import { amqpCheck, databaseCheck, HealthReporter, temporalCheck, type ReadinessCheck } from './health';
import { LogBatchRefusedError, LogIngest } from './ingest';
import { formatSeqRange, REFUSED_SEQS_TRAILER } from '../model/log-text';
import { joinHostPort, splitHostPort } from '../platform/net';

export interface LogServiceDeps {
  jobs: JobStore;
  temporal: Client;
  log: Logger;
  /** Transport settings (grpcServerSettings(cfg)); default: plaintext, keepalive 20s/10s, 32 MiB. */
  server?: GrpcServerSettings;
  /** What must work for the health service to say SERVING; none: always SERVING. */
  readiness?: ReadinessCheck[];
  /** Secrets masked again at ingest (defence in depth; the runner masks first). */
  secrets?: SecretMasker;
  /** How long a token lookup is reused (TOKEN_CACHE_MS). */
  tokenCacheMs?: number;
  /** How long close() waits for open calls before cutting them; default 5 s. */
  shutdownGraceMs?: number;
  /** Where uploaded artifacts go, and how large they may be. */
  blobs: BlobStore;
  artifactLimits: ArtifactLimits;
  /**
   * The header a job's runner fetches its repository with (forges/git-credential.ts), sent in
   * StartJob's answer; none: anonymous fetches.
   */
  checkoutAuth?: (job: { source: string; repoUrl: string }) => string | undefined;
  /** How long a runner's checkout retries an unreachable repository; unset: the runner's default. */
  checkoutRetryForMs?: number;
}

export interface GrpcServerSettings {
  keepaliveTimeMs: number;
  keepaliveTimeoutMs: number;
  maxMessageBytes: number;
  /** PEM certificate chain and key: serve TLS. */
  tls?: { cert: Buffer; key: Buffer };
}

const DEFAULT_SERVER_SETTINGS: GrpcServerSettings = {
  keepaliveTimeMs: 20_000,
  keepaliveTimeoutMs: 10_000,
  maxMessageBytes: 32 * 1024 * 1024,
};

function readPem(file: string, setting: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new ConfigError(`${setting} names ${file}, which cannot be read: ${(err as Error).message}`);
  }
}

export function grpcServerSettings(
  cfg: Pick<
    Config,
    'grpcKeepaliveTimeMs' | 'grpcKeepaliveTimeoutMs' | 'grpcMaxMessageBytes' | 'grpcTlsCert' | 'grpcTlsKey'
  >,
): GrpcServerSettings {
  if ((cfg.grpcTlsCert === undefined) !== (cfg.grpcTlsKey === undefined)) {
    throw new ConfigError(
      'GRPC_TLS_CERT and GRPC_TLS_KEY go together',
      'set both to serve TLS, or neither for plaintext',
    );
  }
  return {
    keepaliveTimeMs: cfg.grpcKeepaliveTimeMs,
    keepaliveTimeoutMs: cfg.grpcKeepaliveTimeoutMs,
    maxMessageBytes: cfg.grpcMaxMessageBytes,
    ...(cfg.grpcTlsCert && cfg.grpcTlsKey
      ? {
          tls: {
            cert: readPem(cfg.grpcTlsCert, 'GRPC_TLS_CERT'),
            key: readPem(cfg.grpcTlsKey, 'GRPC_TLS_KEY'),
          },
        }
      : {}),
  };
}

export interface RunningLogService {
  port: number;
  address: string;
  health: HealthReporter;
  close(): Promise<void>;
}

/**
 * WaitForAssignment: how often a held call looks for its machine's job when no wake-up came (a
 * claim wakes it at once: PoolStore.claims), and the longest a call is held.
 */
const POOL_LOOK_MS = 1_000;
const POOL_WAIT_MAX_MS = 10_000;

/** A step index or total the runner may send: far above any real job, well inside int32. */
const MAX_STEPS = 100_000;

/** A Map that forgets its oldest entries past `max`. */
class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly max: number) {
    super();
  }
  override set(key: K, value: V): this {
    super.delete(key);
    super.set(key, value);
    if (this.size > this.max) super.delete(this.keys().next().value as K);
    return this;
  }
}

class StatusError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Internals (a database error names server files and tables) go to the server log under a
 * correlation id; the client gets the id, never the text.
 */
function toStatus(err: unknown, log?: Logger): grpc.StatusObject & { message: string } {
  const base = { metadata: new grpc.Metadata() };
  if (err instanceof StatusError || err instanceof ArtifactRefusedError)
    return { ...base, code: err.code, details: err.message, message: err.message };
  if (err instanceof LogBatchRefusedError) {
    // Not retryable: the runner replaces the named lines with a notice and resends.
    const metadata = new grpc.Metadata();
    metadata.set(REFUSED_SEQS_TRAILER, formatSeqRange(err.firstSeq, err.lastSeq));
    return { metadata, code: grpc.status.INVALID_ARGUMENT, details: err.message, message: err.message };
  }
  if (err instanceof ForbiddenError)
    return { ...base, code: grpc.status.PERMISSION_DENIED, details: err.message, message: err.message };
  if (err instanceof AuthError)
    return { ...base, code: grpc.status.UNAUTHENTICATED, details: err.message, message: err.message };
  // Database or Temporal trouble: the runner should retry, not give up.
  const ref = randomUUID();
  log?.error({ err, ref }, 'runner call failed');
  const message = `log service could not complete the call (ref ${ref}); it is logged there`;
  return { ...base, code: grpc.status.UNAVAILABLE, details: message, message };
}

/**
 * How much received log text may wait for the store in progress before the stream is paused:
 * large enough that one insert carries several runner batches, small enough that a backlog here
 * adds little to what `solstice logs -f` waits for and to the service's memory. Memory is why it
 * is not 2 MiB as it was: node-postgres builds a statement in a buffer it grows by half again
 * from 256 bytes, so a 2 MiB insert left about 6 MiB of buffers for the GC and glibc's heap
 * grew with them (bench:logs, 128 MiB of log: log service peak RSS 225 MiB, 189 with 512 KiB).
 */
const GROUP_MAX_BYTES = 512 * 1024;

const STREAM_NAMES: Record<string, string> = {
  LOG_STREAM_STDOUT: 'stdout',
  LOG_STREAM_STDERR: 'stderr',
  LOG_STREAM_SYSTEM: 'system',
};

const STEP_OUTCOMES: Record<string, StepOutcome> = {
  STEP_OUTCOME_SUCCESS: 'success',
  STEP_OUTCOME_FAILURE: 'failure',
  STEP_OUTCOME_SKIPPED: 'skipped',
  STEP_OUTCOME_INTERRUPTED: 'interrupted',
};

function stepRecord(st: StepResult__Output): StepReport {
  const outcome = STEP_OUTCOMES[st.outcome] ?? 'failure';
  const ran = outcome !== 'skipped';
  return {
    index: st.index,
    name: st.name,
    outcome,
    exitCode: ran ? st.exitCode : null,
    continueOnError: st.continueOnError,
    startedAt: ran && st.startedUnixMs > 0 ? new Date(st.startedUnixMs) : null,
    durationMs: ran ? st.durationMs : null,
    firstSeq: st.firstSeq > 0 ? st.firstSeq : null,
    lastSeq: st.lastSeq > 0 ? st.lastSeq : null,
  };
}

/**
 * Transport settings, readiness checks and the secrets to mask, from the configuration. The
 * readiness checks are the database and Temporal always, RabbitMQ when `checkAmqp` (the
 * deployment configured it for this process).
 */
export function logServiceOptions(
  cfg: Config,
  temporal: Client,
  opts: { checkAmqp: boolean },
): Pick<LogServiceDeps, 'server' | 'readiness' | 'secrets' | 'checkoutAuth' | 'checkoutRetryForMs'> {
  // The forge token is masked at ingest too, should a runner ever print it.
  const secrets = [
    ...SecretStore.load(cfg.secretsFile).all(),
    ...(cfg.forgejoToken ? [{ name: 'SOLSTICE_FORGEJO_TOKEN', value: cfg.forgejoToken }] : []),
  ];
  const credentials = { forgejoToken: cfg.forgejoToken, forgejoApiUrl: cfg.forgejoApiUrl };
  return {
    server: grpcServerSettings(cfg),
    ...(secrets.length > 0 ? { secrets: new SecretMasker(secrets) } : {}),
    checkoutAuth: (job) => gitAuthHeader(credentials, job),
    checkoutRetryForMs: cfg.checkoutRetryForMs,
    readiness: [
      databaseCheck(effectiveDatabaseUrl(cfg)),
      temporalCheck(temporal),
      ...(opts.checkAmqp ? [amqpCheck(cfg.amqpUrl)] : []),
    ],
  };
}

/** A call the runner cancelled (or whose deadline passed): stop working on it. */
function throwIfCancelled(call: { cancelled: boolean }): void {
  if (call.cancelled) throw new StatusError(grpc.status.CANCELLED, 'the runner cancelled the call');
}

/** A server span for one call, child of the trace context the runner sent in the metadata. */
function callSpan(method: string, metadata: grpc.Metadata): Span {
  return tracer().startSpan(
    `log-service ${method}`,
    {
      kind: SpanKind.SERVER,
      attributes: { 'rpc.system': 'grpc', 'rpc.service': 'runner.v1.RunnerService', 'rpc.method': method },
    },
    extractTraceContext(metadata.getMap()),
  );
}

function endSpan(span: Span, err?: unknown): void {
  if (err !== undefined) {
    const status = toStatus(err);
    span.setAttribute('rpc.grpc.status_code', status.code);
    span.setStatus({ code: SpanStatusCode.ERROR, message: status.message });
  }
  span.end();
}

/** Answers a unary call with what `result` brings or its error as a status, ending its span first. */
function answer<Res>(span: Span, callback: grpc.sendUnaryData<Res>, result: Promise<Res>, log: Logger): void {
  void result.then(
    (res) => {
      endSpan(span);
      callback(null, res);
    },
    (err: unknown) => {
      endSpan(span, err);
      callback(toStatus(err, log));
    },
  );
}

function createHandlers(deps: LogServiceDeps, pool: PoolStore): RunnerServiceHandlers {
  const { jobs, temporal, log } = deps;
  const tokens = new TokenCache(jobs, deps.tokenCacheMs ?? TOKEN_CACHE_MS);
  /**
   * Jobs whose runner called FinishJob → the last line it declared. The token lives on until
   * the workflow revokes it, seconds later; lines streamed in between are refused. Kept in
   * this process: a log service that restarts in that window is the runner's resend case,
   * where the lines are already stored.
   */
  const finished = new BoundedMap<string, number>(10_000);

  /** Progress for the Web UI only: a failed signal is logged, never fails the call. */
  const signalStep = async (
    job: AuthenticatedJob,
    step: { index: number; total: number; name: string },
  ): Promise<void> => {
    try {
      await temporal.workflow
        .getHandle(job.workflowId)
        .signal(runnerStepSignal, { attempt: job.attempt, ...step });
    } catch (err) {
      log.warn({ err, jobId: job.id, step: step.name }, 'could not tell the workflow a step started');
    }
  };

  /**
   * A runner's unary call: a server span continuing the runner's trace (active, so the workflow
   * signals `work` sends are its children), a fresh token check for `jobId`, then the reply.
   */
  function unary<Res>(
    method: string,
    call: { metadata: grpc.Metadata; cancelled: boolean },
    callback: grpc.sendUnaryData<Res>,
    jobId: string,
    work: (job: AuthenticatedJob) => Promise<Res>,
  ): void {
    const span = callSpan(method, call.metadata);
    const result = context.with(trace.setSpan(context.active(), span), async () => {
      const job = await authenticate(tokens, call.metadata, jobId, { fresh: true });
      span.setAttribute(ATTR.jobId, job.id);
      throwIfCancelled(call);
      return work(job);
    });
    answer(span, callback, result, log);
  }

  const checkoutAuthOf = async (jobId: string): Promise<string | undefined> => {
    if (!deps.checkoutAuth) return undefined;
    const row = await jobs.db.job.findUnique({
      where: { id: jobId },
      select: { source: true, repoUrl: true },
    });
    return row ? deps.checkoutAuth(row) : undefined;
  };

  return {
    UploadArtifact: uploadArtifactHandler(
      { tokens, artifacts: new ArtifactStore(jobs.db), blobs: deps.blobs, limits: deps.artifactLimits, log },
      toStatus,
    ),

    StartJob(call, callback) {
      unary('StartJob', call, callback, call.request.jobId, async (job) => {
        await jobs.runnerContact(job.id, job.attempt);
        if (await jobs.markRunning(job.id)) {
          const machine = await jobs.machineOf(job.id, job.attempt);
          if (machine) {
            instruments().vmBoot.record((Date.now() - machine.createdAt.getTime()) / 1000, {
              provider: machine.provider,
            });
          }
        }
        await temporal.workflow
          .getHandle(job.workflowId)
          .signal(runnerStartedSignal, { attempt: job.attempt, hostname: call.request.hostname });
        log.info({ jobId: job.id, attempt: job.attempt, hostname: call.request.hostname }, 'runner started');
        const checkoutAuthHeader = await checkoutAuthOf(job.id);
        return {
          persistedThroughSeq: await jobs.lastLogSeq(job.id),
          ...(checkoutAuthHeader ? { checkoutAuthHeader } : {}),
          ...(deps.checkoutRetryForMs ? { checkoutRetryForMs: deps.checkoutRetryForMs } : {}),
        };
      });
    },

    StreamLogs(call) {
      const span = callSpan('StreamLogs', call.metadata);
      let ingest: LogIngest | undefined;
      let streamJob: AuthenticatedJob | undefined;
      let failed = false;
      /**
       * Stores every batch that arrived while the previous write ran, as one insert with one
       * acknowledgement (acks are cumulative). A busy stream so pays one round trip per group
       * instead of one per batch, and receiving overlaps with storing.
       */
      const store = async (batches: LogBatch__Output[]): Promise<void> => {
        // Every group: a token revoked mid-stream (job ended, new machine attempt) stops here,
        // and a batch claiming another job than the token's is refused as it would be alone.
        const job = await authenticate(tokens, call.metadata, batches[0].jobId);
        for (const other of new Set(batches.map((b) => b.jobId).filter((id) => id !== job.id)))
          await authenticate(tokens, call.metadata, other); // throws: the token is for job.id
        if (!ingest || !streamJob) {
          ingest = await LogIngest.open(jobs, job.id, deps.secrets);
          streamJob = job;
          span.setAttribute(ATTR.jobId, job.id);
        }
        if (job.id !== streamJob.id) {
          throw new StatusError(grpc.status.INVALID_ARGUMENT, 'one stream carries one job');
        }
        const lines = batches.flatMap((batch) =>
          batch.lines.map((l) => ({
            seq: l.seq,
            stream: STREAM_NAMES[l.stream] ?? 'stdout',
            text: l.text,
            timeUnixMs: l.timeUnixMs,
          })),
        );
        // The log ends where the runner said it ends: what comes after FinishJob would be in
        // the database but not in the blob written from it when the job is finalized.
        const end = finished.get(job.id);
        if (end !== undefined && lines.some((l) => l.seq > end))
          throw new StatusError(
            grpc.status.FAILED_PRECONDITION,
            `the job finished at line ${end}; no lines are stored after it`,
          );
        const through = await ingest.accept(lines);
        const ack: LogAck = { persistedThroughSeq: through };
        call.write(ack);
      };
      // Events rather than `for await`: the async iterator destroys the duplex stream when the
      // client half-closes, and a destroyed call can no longer send its final status.
      // Back-pressure: past GROUP_MAX_BYTES waiting, the call is paused, which stops grpc-js
      // reading and lets HTTP/2 flow control hold the runner.
      let waiting: LogBatch__Output[] = [];
      let waitingBytes = 0;
      let scheduled = false;
      let chain = Promise.resolve();
      const flush = async (): Promise<void> => {
        scheduled = false;
        const batches = waiting;
        waiting = [];
        waitingBytes = 0;
        call.resume();
        if (!failed && batches.length > 0) await store(batches);
      };
      // The runner gave up on this stream (reconnecting, or it ended): drop what is queued.
      call.on('cancelled', () => (failed = true));
      call.on('data', (batch: LogBatch__Output) => {
        waiting.push(batch);
        waitingBytes += batch.lines.reduce((n, l) => n + l.text.length, 0);
        if (waitingBytes >= GROUP_MAX_BYTES) call.pause();
        if (scheduled) return;
        scheduled = true;
        chain = chain.then(flush).catch((err: unknown) => {
          failed = true;
          endSpan(span, err);
          const status = toStatus(err, log);
          call.emit('error', status);
        });
      });
      call.on('end', () => {
        void chain.then(() => {
          if (failed) return;
          endSpan(span);
          call.end();
        });
      });
      // A runner that goes away without half-closing (killed, network lost).
      call.on('cancelled', () => span.end());
    },

    // Warm pools: an idle machine's runner waits here with its pool token (capacity/pool-store.ts).
    // The server looks every POOL_LOOK_MS; each look also stamps the machine's sign of life.
    WaitForAssignment(call, callback) {
      const req: WaitForAssignmentRequest__Output = call.request;
      const span = callSpan('WaitForAssignment', call.metadata);
      const work = async (): Promise<WaitForAssignmentResponse> => {
        const token = bearerTokenFrom(call.metadata);
        if (!token)
          throw new AuthError('missing bearer token (metadata "authorization: Bearer <pool token>")');
        if (!req.machineId || !req.publicKey)
          throw new StatusError(
            grpc.status.INVALID_ARGUMENT,
            'WaitForAssignment needs machine_id and public_key',
          );
        const hash = hashJobToken(token);
        const until = Date.now() + Math.min(req.waitMs || POOL_WAIT_MAX_MS, POOL_WAIT_MAX_MS);
        // Before the first look, so a claim committed after it wakes the wait below.
        const claimed = pool.claims.follow(req.machineId);
        try {
          for (;;) {
            // A runner that went away (its machine destroyed) is not waited for.
            if (call.cancelled) return {};
            const look = await pool.waitLook(req.machineId, hash, req.publicKey);
            if (!look)
              throw new AuthError(
                `pool token of ${req.machineId} is unknown or revoked, or the machine was recycled`,
              );
            if (look.assignment) {
              log.info({ machineId: req.machineId }, 'pool machine took its job');
              return { sealedJobFile: look.assignment };
            }
            const left = until - Date.now();
            if (call.cancelled || left <= 0) return {};
            await claimed.wait(Math.min(POOL_LOOK_MS, left));
          }
        } finally {
          claimed.release();
        }
      };
      answer(span, callback, work(), log);
    },

    // The machine's sign of life (see workflows/job.ts, liveness): one small write, no signal.
    Heartbeat(call, callback) {
      unary('Heartbeat', call, callback, call.request.jobId, async (job) => {
        await jobs.runnerContact(job.id, job.attempt);
        return {};
      });
    },

    ReportStep(call, callback) {
      const req: ReportStepRequest__Output = call.request;
      unary('ReportStep', call, callback, req.jobId, async (job) => {
        const st = req.step;
        if (!st || st.index < 1)
          throw new StatusError(grpc.status.INVALID_ARGUMENT, 'ReportStep needs a step');
        // Bounded before the database sees them: its columns are 32-bit.
        if (st.index > MAX_STEPS || req.total > MAX_STEPS || st.name.length > 1024)
          throw new StatusError(
            grpc.status.INVALID_ARGUMENT,
            `a step index and total are at most ${MAX_STEPS}, a step name at most 1024 characters`,
          );
        const started = st.outcome === 'STEP_OUTCOME_UNSPECIFIED';
        await jobs.recordStepProgress(
          job.id,
          job.attempt,
          started
            ? { ...stepRecord(st), outcome: 'running', exitCode: null, durationMs: null, lastSeq: null }
            : stepRecord(st),
        );
        if (started) await signalStep(job, { index: st.index, total: req.total, name: st.name });
        return {};
      });
    },

    FinishJob(call, callback) {
      const req: FinishJobRequest__Output = call.request;
      unary('FinishJob', call, callback, req.jobId, async (job) => {
        const stored = await jobs.lastLogSeq(job.id);
        if (stored < req.lastSeq) {
          throw new StatusError(
            grpc.status.FAILED_PRECONDITION,
            `only lines up to ${stored} of ${req.lastSeq} are stored; stream the rest before finishing`,
          );
        }
        throwIfCancelled(call);
        if (req.steps.some((x) => x.index < 1 || x.index > MAX_STEPS))
          throw new StatusError(grpc.status.INVALID_ARGUMENT, `step indexes are 1 to ${MAX_STEPS}`);
        finished.set(job.id, req.lastSeq);
        await jobs.recordSteps(job.id, job.attempt, req.steps.map(stepRecord));
        // An enum value this service does not know arrives as a number: the runner's mistake.
        if (typeof req.reason !== 'string')
          throw new StatusError(grpc.status.INVALID_ARGUMENT, `unknown finish reason ${String(req.reason)}`);
        const reason = (req.reason.replace(/^FINISH_REASON_/, '') || 'RUNNER_ERROR') as FinishReason;
        await temporal.workflow.getHandle(job.workflowId).signal(runnerFinishedSignal, {
          attempt: job.attempt,
          reason: reason === ('UNSPECIFIED' as FinishReason) ? 'RUNNER_ERROR' : reason,
          exitCode: req.exitCode,
          message: req.message,
          durationMs: req.durationMs,
          ...(Object.keys(req.outputs ?? {}).length > 0 ? { outputs: req.outputs } : {}),
        });
        log.info({ jobId: job.id, reason, exitCode: req.exitCode }, 'runner finished');
        return {};
      });
    },
  };
}

/**
 * Stops accepting calls and waits for open ones (a runner's log stream lasts as long as its job)
 * up to `graceMs`, then cuts them; runners reconnect and resend what was not acknowledged.
 */
export function shutdownGrpcServer(server: grpc.Server, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}

export async function startLogService(addr: string, deps: LogServiceDeps): Promise<RunningLogService> {
  const settings = deps.server ?? DEFAULT_SERVER_SETTINGS;
  const server = new grpc.Server({
    'grpc.max_receive_message_length': settings.maxMessageBytes,
    'grpc.max_send_message_length': settings.maxMessageBytes,
    'grpc.keepalive_time_ms': settings.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': settings.keepaliveTimeoutMs,
  });
  const pool = new PoolStore(deps.jobs.db);
  server.addService(runnerServiceDefinition(), createHandlers(deps, pool));
  const health = new HealthReporter(deps.readiness ?? [], deps.log);
  health.addToServer(server);
  const credentials = settings.tls
    ? grpc.ServerCredentials.createSsl(
        null,
        [{ cert_chain: settings.tls.cert, private_key: settings.tls.key }],
        false,
      )
    : grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(addr, credentials, (err, p) => (err ? reject(err) : resolve(p))),
  );
  await health.start();
  const address = joinHostPort(splitHostPort(addr, 'log service address').host, port);
  deps.log.info({ address, tls: settings.tls !== undefined }, 'log service listening');
  return {
    port,
    address,
    health,
    close: async () => {
      health.stop();
      await shutdownGrpcServer(server, deps.shutdownGraceMs ?? 5000);
      // Its lingering LISTEN connection would keep the process (and the database) in use.
      pool.claims.stop();
    },
  };
}
