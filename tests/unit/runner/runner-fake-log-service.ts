/**
 * A real gRPC server implementing runner.v1.RunnerService for the runner tests. It records
 * every call, checks the bearer token, stores log lines the way the real log service must
 * (one line per seq, in order, duplicates dropped) and can misbehave on demand.
 */
import * as grpc from '@grpc/grpc-js';
import {
  bearerTokenFrom,
  runnerServiceDefinition,
  type FinishJobRequest__Output,
  type LogLine__Output,
  type ReportStepRequest__Output,
  type RunnerServiceHandlers,
  type StartJobRequest__Output,
} from '../../../model/runner-proto';
import { REFUSED_SEQS_TRAILER } from '../../../model/log-text';

export interface FakeLogServiceOptions {
  token: string;
  /** What StartJob answers: lines a previous runner already stored. */
  persistedThroughSeq?: number;
  /** End the first StreamLogs call with UNAVAILABLE when this many batches were received. */
  dropFirstStreamAfterBatches?: number;
  /** Never acknowledge anything on the first StreamLogs call (a stuck server). */
  silentFirstStream?: boolean;
  /**
   * Refuse lines for good whose text matches, as the real service does when its database
   * refuses them: lines before are stored, then the stream ends INVALID_ARGUMENT naming it.
   */
  refuse?: RegExp;
  /** Answer ReportStep with UNIMPLEMENTED, as a log service older than the call would. */
  noStepReports?: boolean;
  /** What StartJob answers about the checkout: the fetch credential and the retry window. */
  checkoutAuthHeader?: string;
  checkoutRetryForMs?: number;
}

export interface ReceivedLine {
  /** 1-based number of the StreamLogs call the line came on. */
  call: number;
  line: LogLine__Output;
}

export class FakeLogService {
  readonly starts: StartJobRequest__Output[] = [];
  /** Heartbeat calls received. */
  heartbeats = 0;
  readonly finishes: FinishJobRequest__Output[] = [];
  /** ReportStep calls in arrival order, with how many FinishJob calls had come before each. */
  readonly stepReports: (ReportStepRequest__Output & { finishesBefore: number })[] = [];
  /** Every line as received, duplicates included. */
  readonly received: ReceivedLine[] = [];
  /** Stored lines, seq → line. */
  readonly stored = new Map<number, LogLine__Output>();
  /** Lines that arrived after a gap (seq > stored + 1): must stay empty. */
  readonly gaps: number[] = [];
  readonly authFailures: string[] = [];
  /** Lines per received batch, in arrival order. */
  readonly batchSizes: number[] = [];
  streamCalls = 0;
  /** persisted-through seq when the first stream was dropped. */
  ackedAtDrop: number | undefined;
  private persisted: number;
  private readonly server = new grpc.Server();

  constructor(private readonly opts: FakeLogServiceOptions) {
    this.persisted = opts.persistedThroughSeq ?? 0;
    this.server.addService(runnerServiceDefinition(), this.handlers());
  }

  async start(): Promise<string> {
    const port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    return `127.0.0.1:${port}`;
  }

  stop(): void {
    this.server.forceShutdown();
  }

  /** Stored lines in seq order. */
  lines(): LogLine__Output[] {
    return [...this.stored.keys()]
      .sort((a, b) => a - b)
      .map((seq) => this.stored.get(seq) as LogLine__Output);
  }

  texts(stream?: string): string[] {
    return this.lines()
      .filter((l) => stream === undefined || l.stream === stream)
      .map((l) => l.text);
  }

  private authorize(method: string, md: grpc.Metadata): grpc.ServiceError | undefined {
    if (bearerTokenFrom(md) === this.opts.token) return undefined;
    this.authFailures.push(method);
    const err = new Error('invalid job token') as grpc.ServiceError;
    err.code = grpc.status.UNAUTHENTICATED;
    err.details = 'invalid job token';
    return err;
  }

  private handlers(): RunnerServiceHandlers {
    return {
      // Warm pools are tested against the real log service (tests/integration/capacity/pools.test.ts).
      WaitForAssignment: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED, details: 'not in the fake' }),
      StartJob: (call, cb) => {
        const denied = this.authorize('StartJob', call.metadata);
        if (denied) return cb(denied);
        this.starts.push(call.request);
        cb(null, {
          persistedThroughSeq: this.persisted,
          checkoutAuthHeader: this.opts.checkoutAuthHeader ?? '',
          checkoutRetryForMs: this.opts.checkoutRetryForMs ?? 0,
        });
      },
      UploadArtifact: (call, cb) => {
        // The runner tests declare no artifacts; an upload here is a bug in the runner.
        call.on('data', () => undefined);
        call.on('end', () =>
          cb({ code: grpc.status.UNIMPLEMENTED, details: 'no artifacts in runner tests' }),
        );
      },
      Heartbeat: (call, cb) => {
        const denied = this.authorize('Heartbeat', call.metadata);
        if (denied) return cb(denied);
        this.heartbeats += 1;
        cb(null, {});
      },
      ReportStep: (call, cb) => {
        const denied = this.authorize('ReportStep', call.metadata);
        if (denied) return cb(denied);
        if (this.opts.noStepReports)
          return cb({ code: grpc.status.UNIMPLEMENTED, details: 'old log service' });
        this.stepReports.push({ ...call.request, finishesBefore: this.finishes.length });
        cb(null, {});
      },
      FinishJob: (call, cb) => {
        const denied = this.authorize('FinishJob', call.metadata);
        if (denied) return cb(denied);
        this.finishes.push(call.request);
        cb(null, {});
      },
      StreamLogs: (call) => {
        const denied = this.authorize('StreamLogs', call.metadata);
        if (denied) {
          call.emit('error', denied);
          return;
        }
        const callNo = ++this.streamCalls;
        let batches = 0;
        let dropped = false;
        call.on('data', (batch) => {
          if (dropped) return;
          batches++;
          this.batchSizes.push(batch.lines.length);
          if (callNo === 1 && this.opts.silentFirstStream) return;
          if (callNo === 1 && this.opts.dropFirstStreamAfterBatches === batches - 1) {
            // Drop before storing or acking this batch: the runner must resend it.
            dropped = true;
            this.ackedAtDrop = this.persisted;
            call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'log service going away (test)' });
            return;
          }
          for (const line of batch.lines) {
            this.received.push({ call: callNo, line });
            if (line.seq <= this.persisted) continue; // duplicate of a stored line
            if (line.seq !== this.persisted + 1) {
              this.gaps.push(line.seq);
              continue;
            }
            if (this.opts.refuse?.test(line.text)) {
              dropped = true;
              const metadata = new grpc.Metadata();
              metadata.set(REFUSED_SEQS_TRAILER, `${line.seq}-${line.seq}`);
              call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'refused (test)', metadata });
              return;
            }
            this.stored.set(line.seq, line);
            this.persisted = line.seq;
          }
          call.write({ persistedThroughSeq: this.persisted });
        });
        call.on('end', () => {
          if (!dropped) call.end();
        });
        call.on('error', () => undefined);
      },
    };
  }
}
