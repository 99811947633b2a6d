/**
 * Unary calls to the log service (StartJob, FinishJob): every attempt has a deadline, and
 * attempts that fail because the service is unreachable are retried with backoff for a
 * bounded time. Errors that retrying cannot fix end the runner at once with a clear message.
 */
import * as grpc from '@grpc/grpc-js';
import { SolsticeError } from '../platform/errors';
import {
  bearerMetadata,
  type FinishJobRequest,
  type ReportStepRequest,
  type RunnerServiceClient,
  type StartJobRequest,
  type StartJobResponse__Output,
} from '../model/runner-proto';
import { backoffDelay, sleep, type BackoffPolicy } from './backoff';
import { diag } from './diag';
import { JobTokenRejectedError, LogServiceRejectedError, LogServiceUnavailableError } from './errors';

export interface RpcSettings {
  /** host:port of the log service, for messages. */
  address: string;
  jobId: string;
  token: string;
  /** Deadline of one unary attempt. */
  deadlineMs: number;
  /** How long to keep retrying while the service is unreachable before giving up. */
  retryForMs: number;
  backoff: BackoffPolicy;
  /** Trace context (traceparent) sent with every call, so the log service's spans join the job's trace. */
  trace?: Readonly<Record<string, string>>;
}

/** TLS verified against the job's CA when the job file gives one, else plaintext. */
export function runnerCredentials(ctx: { tlsCa?: string }): grpc.ChannelCredentials {
  return ctx.tlsCa ? grpc.credentials.createSsl(Buffer.from(ctx.tlsCa)) : grpc.credentials.createInsecure();
}

export function isServiceError(err: unknown): err is grpc.ServiceError {
  return err instanceof Error && typeof (err as Partial<grpc.ServiceError>).code === 'number';
}

export function describeGrpcError(err: unknown): string {
  if (!isServiceError(err)) return err instanceof Error ? err.message : String(err);
  return `${grpc.status[err.code] ?? err.code}: ${err.details || err.message}`;
}

/**
 * Codes worth another attempt: the service is down or restarting (UNAVAILABLE), or did not
 * answer in time (DEADLINE_EXCEEDED). StartJob and FinishJob are idempotent for a job, so a
 * repeat after a lost answer is harmless.
 */
const RETRYABLE = new Set<number>([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]);

/** The error that ends the runner when `method` failed with `err` and retrying will not help. */
export function fatalRpcError(
  method: string,
  err: unknown,
  s: Pick<RpcSettings, 'address' | 'jobId'>,
): SolsticeError {
  const what = describeGrpcError(err);
  if (
    isServiceError(err) &&
    (err.code === grpc.status.UNAUTHENTICATED || err.code === grpc.status.PERMISSION_DENIED)
  ) {
    return new JobTokenRejectedError(
      `the log service at ${s.address} rejected the token of job ${s.jobId} (${method}: ${what})`,
      "the token is valid for one job and only while it runs: was the job cancelled, finished, or given another machine's token?",
      { cause: err },
    );
  }
  return new LogServiceRejectedError(`${method} failed at ${s.address} (${what})`, undefined, { cause: err });
}

type UnaryInvoke<Res> = (
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: grpc.requestCallback<Res>,
) => grpc.ClientUnaryCall;

export class RunnerRpc {
  constructor(
    private readonly client: RunnerServiceClient,
    private readonly s: RpcSettings,
  ) {}

  /** Fresh metadata per call: grpc-js may mutate the object it is given. */
  metadata(): grpc.Metadata {
    const md = bearerMetadata(this.s.token);
    for (const [k, v] of Object.entries(this.s.trace ?? {})) md.set(k, v);
    return md;
  }

  startJob(req: StartJobRequest): Promise<StartJobResponse__Output> {
    return this.unary('StartJob', (md, opts, cb) => this.client.startJob(req, md, opts, cb));
  }

  async finishJob(req: FinishJobRequest): Promise<void> {
    await this.unary('FinishJob', (md, opts, cb) => this.client.finishJob(req, md, opts, cb));
  }

  /** One attempt, no retries: the next heartbeat comes soon enough, and a late one is useless. */
  heartbeat(jobId: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.heartbeat(
        { jobId },
        this.metadata(),
        { deadline: Date.now() + this.s.deadlineMs },
        (err) => (err ? reject(err) : resolve()),
      );
    });
  }

  /** One attempt, no retries: step progress is for the live view, FinishJob carries the record. */
  reportStep(req: ReportStepRequest): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.reportStep(req, this.metadata(), { deadline: Date.now() + this.s.deadlineMs }, (err) =>
        err ? reject(err) : resolve(),
      );
    });
  }

  private async unary<Res>(method: string, invoke: UnaryInvoke<Res>): Promise<Res> {
    const startedAt = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        return await new Promise<Res>((resolve, reject) => {
          invoke(this.metadata(), { deadline: Date.now() + this.s.deadlineMs }, (err, res) => {
            if (err) reject(err);
            else if (res === undefined) reject(new Error(`${method}: empty response`));
            else resolve(res);
          });
        });
      } catch (err) {
        if (!isServiceError(err) || !RETRYABLE.has(err.code)) throw fatalRpcError(method, err, this.s);
        const delay = backoffDelay(attempt, this.s.backoff);
        if (Date.now() - startedAt + delay > this.s.retryForMs) {
          throw new LogServiceUnavailableError(
            `gave up on ${method}: the log service at ${this.s.address} was unreachable for ${Math.round((Date.now() - startedAt) / 1000)}s (${describeGrpcError(err)})`,
            'check that the orchestrator is running and that ORCH_CONTACT_ADDR is reachable from this machine',
            { cause: err },
          );
        }
        diag(`${method}: log service unavailable (${describeGrpcError(err)}); retrying in ${delay}ms`);
        await sleep(delay);
      }
    }
  }
}
