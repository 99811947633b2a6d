/**
 * The log service: the gRPC endpoint runners stream to. It authenticates each call with the
 * per-job token, stores log lines (see ingest.ts), and tells the job's workflow when the
 * runner started and finished. The finished signal is sent only once every line up to the
 * runner's last sequence number is stored, so a workflow never finalizes a partial log.
 *
 * Every call is a server span continuing the runner's trace (traceparent in the call metadata).
 */
import * as grpc from '@grpc/grpc-js';
import { context, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import type { Client } from '@temporalio/client';
import { AuthError, ForbiddenError } from '../../common/errors';
import type { JobStepRecord, JobStore, StepOutcome } from '../../common/job-store';
import type { Logger } from '../../common/logger';
import { instruments } from '../../common/metrics';
import { ATTR } from '../../common/span-attributes';
import { extractTraceContext, tracer } from '../../common/telemetry';
import {
  runnerServiceDefinition,
  type FinishJobRequest__Output,
  type LogAck,
  type LogBatch__Output,
  type RunnerServiceHandlers,
  type StepResult__Output,
} from '../../common/runner-proto';
import { runnerFinishedSignal, runnerStartedSignal } from '../../workflows/signals';
import type { FinishReason } from '../../workflows/types';
import { authenticate } from './auth';
import { LogIngest } from './ingest';

export interface LogServiceDeps {
  jobs: JobStore;
  temporal: Client;
  log: Logger;
}

export interface RunningLogService {
  port: number;
  address: string;
  close(): Promise<void>;
}

class StatusError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

function toStatus(err: unknown): grpc.StatusObject & { message: string } {
  const base = { metadata: new grpc.Metadata() };
  if (err instanceof StatusError)
    return { ...base, code: err.code, details: err.message, message: err.message };
  if (err instanceof ForbiddenError)
    return { ...base, code: grpc.status.PERMISSION_DENIED, details: err.message, message: err.message };
  if (err instanceof AuthError)
    return { ...base, code: grpc.status.UNAUTHENTICATED, details: err.message, message: err.message };
  // Database or Temporal trouble: the runner should retry, not give up.
  const message = `log service could not complete the call: ${err instanceof Error ? err.message : String(err)}`;
  return { ...base, code: grpc.status.UNAVAILABLE, details: message, message };
}

const STREAM_NAMES: Record<string, string> = {
  LOG_STREAM_STDOUT: 'stdout',
  LOG_STREAM_STDERR: 'stderr',
  LOG_STREAM_SYSTEM: 'system',
};

const STEP_OUTCOMES: Record<string, StepOutcome> = {
  STEP_OUTCOME_SUCCESS: 'success',
  STEP_OUTCOME_FAILURE: 'failure',
  STEP_OUTCOME_SKIPPED: 'skipped',
};

function stepRecord(st: StepResult__Output): JobStepRecord {
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

export function createHandlers(deps: LogServiceDeps): RunnerServiceHandlers {
  const { jobs, temporal, log } = deps;

  return {
    StartJob(call, callback) {
      const span = callSpan('StartJob', call.metadata);
      // Active, so the workflow signal below is a child of this call's span.
      void context
        .with(trace.setSpan(context.active(), span), async () => {
          const job = await authenticate(jobs, call.metadata, call.request.jobId);
          span.setAttribute(ATTR.jobId, job.id);
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
          log.info(
            { jobId: job.id, attempt: job.attempt, hostname: call.request.hostname },
            'runner started',
          );
          return { persistedThroughSeq: await jobs.lastLogSeq(job.id) };
        })
        .then(
          (res) => {
            endSpan(span);
            callback(null, res);
          },
          (err: unknown) => {
            endSpan(span, err);
            callback(toStatus(err));
          },
        );
    },

    StreamLogs(call) {
      const span = callSpan('StreamLogs', call.metadata);
      let ingest: LogIngest | undefined;
      let streamJobId: string | undefined;
      let failed = false;
      const handle = async (batch: LogBatch__Output): Promise<void> => {
        if (!ingest) {
          const job = await authenticate(jobs, call.metadata, batch.jobId);
          ingest = await LogIngest.open(jobs, job.id);
          streamJobId = job.id;
          span.setAttribute(ATTR.jobId, job.id);
        } else if (batch.jobId !== streamJobId) {
          throw new StatusError(grpc.status.INVALID_ARGUMENT, 'one stream carries one job');
        }
        const through = await ingest.accept(
          batch.lines.map((l) => ({
            seq: l.seq,
            stream: STREAM_NAMES[l.stream] ?? 'stdout',
            text: l.text,
            timeUnixMs: l.timeUnixMs,
          })),
        );
        const ack: LogAck = { persistedThroughSeq: through };
        call.write(ack);
      };
      // Events rather than `for await`: the async iterator destroys the duplex stream when the
      // client half-closes, and a destroyed call can no longer send its final status.
      // Batches are handled one at a time (pause/resume), which is also our back-pressure.
      let chain = Promise.resolve();
      call.on('data', (batch: LogBatch__Output) => {
        call.pause();
        chain = chain
          .then(() => (failed ? undefined : handle(batch)))
          .catch((err: unknown) => {
            failed = true;
            endSpan(span, err);
            const status = toStatus(err);
            if (status.code === grpc.status.UNAVAILABLE) log.warn({ err }, 'log stream failed');
            call.emit('error', status);
          })
          .finally(() => call.resume());
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

    FinishJob(call, callback) {
      const span = callSpan('FinishJob', call.metadata);
      // Active, so the workflow signal below is a child of this call's span.
      void context
        .with(trace.setSpan(context.active(), span), async () => {
          const req: FinishJobRequest__Output = call.request;
          const job = await authenticate(jobs, call.metadata, req.jobId);
          span.setAttribute(ATTR.jobId, job.id);
          const stored = await jobs.lastLogSeq(job.id);
          if (stored < req.lastSeq) {
            throw new StatusError(
              grpc.status.FAILED_PRECONDITION,
              `only lines up to ${stored} of ${req.lastSeq} are stored; stream the rest before finishing`,
            );
          }
          await jobs.recordSteps(job.id, req.steps.map(stepRecord));
          const reason = (req.reason.replace(/^FINISH_REASON_/, '') || 'RUNNER_ERROR') as FinishReason;
          await temporal.workflow.getHandle(job.workflowId).signal(runnerFinishedSignal, {
            attempt: job.attempt,
            reason: reason === ('UNSPECIFIED' as FinishReason) ? 'RUNNER_ERROR' : reason,
            exitCode: req.exitCode,
            message: req.message,
            durationMs: req.durationMs,
          });
          log.info({ jobId: job.id, reason, exitCode: req.exitCode }, 'runner finished');
          return {};
        })
        .then(
          (res) => {
            endSpan(span);
            callback(null, res);
          },
          (err: unknown) => {
            endSpan(span, err);
            callback(toStatus(err));
          },
        );
    },
  };
}

export async function startLogService(addr: string, deps: LogServiceDeps): Promise<RunningLogService> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': 32 * 1024 * 1024,
    'grpc.keepalive_time_ms': 20_000,
  });
  server.addService(runnerServiceDefinition(), createHandlers(deps));
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const host = addr.slice(0, addr.lastIndexOf(':'));
  deps.log.info({ address: `${host}:${port}` }, 'log service listening');
  return {
    port,
    address: `${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), 5000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
