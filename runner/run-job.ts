/**
 * One job, start to finish: StartJob → checkout → find the job definition → run job.sh while
 * streaming its output → wait until every line is stored → FinishJob. Returns the runner's
 * exit code (the script's own when it ran).
 */
import os from 'node:os';
import {
  createRunnerServiceClient,
  type FinishJobRequest,
  type FinishReason__Output,
} from '../common/runner-proto';
import { describeError } from '../common/errors';
import { DEFAULT_BACKOFF } from './backoff';
import { checkout } from './checkout';
import { diag } from './diag';
import { EXIT } from './errors';
import { exitCodeOf, jobScriptEnv, runJobScript, type RunningScript } from './execute';
import type { JobContext } from './job-context';
import { findJobDefinition, JOB_SCRIPT, WORKFLOW_FILE } from './job-definition';
import { LogBuffer } from './log-buffer';
import { DEFAULT_BATCH, LogShipper } from './log-shipper';
import { RunnerRpc } from './rpc';
import { RUNNER_VERSION } from './version';

interface Outcome {
  reason: FinishReason__Output;
  /** The script's exit code (EXITED only). */
  exitCode: number;
  message: string;
  /** The runner's exit code when it is not the script's (see EXIT). */
  runnerExit?: number;
}

/** Signals the runner passes on to the job script (a VM shutting down, Ctrl-C in development). */
const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

export async function runJob(ctx: JobContext): Promise<number> {
  const client = createRunnerServiceClient(ctx.contactAddr);
  try {
    return await runWithClient(ctx, new RunnerRpc(client, rpcSettings(ctx)), client);
  } finally {
    client.close();
  }
}

function rpcSettings(ctx: JobContext): ConstructorParameters<typeof RunnerRpc>[1] {
  return {
    address: ctx.contactAddr,
    jobId: ctx.jobId,
    token: ctx.token,
    deadlineMs: 15_000,
    retryForMs: ctx.retryForMs,
    backoff: DEFAULT_BACKOFF,
  };
}

async function runWithClient(
  ctx: JobContext,
  rpc: RunnerRpc,
  client: ReturnType<typeof createRunnerServiceClient>,
): Promise<number> {
  const startedAt = Date.now();
  const started = await rpc.startJob({
    jobId: ctx.jobId,
    runnerVersion: RUNNER_VERSION,
    hostname: os.hostname(),
  });
  const resumeAfter = started.persistedThroughSeq;
  diag(
    `job ${ctx.jobId} started${resumeAfter > 0 ? `; ${resumeAfter} log lines already stored, continuing after them` : ''}`,
  );

  // Numbering continues after what a previous runner of this job already stored: the server
  // keeps one line per seq, so restarting at 1 would drop this run's first lines as duplicates.
  const buffer = new LogBuffer({ firstSeq: resumeAfter + 1 });
  const shipper = new LogShipper(client, () => rpc.metadata(), buffer, {
    address: ctx.contactAddr,
    jobId: ctx.jobId,
    batch: DEFAULT_BATCH,
    flushIntervalMs: 50,
    ackTimeoutMs: 30_000,
    retryForMs: ctx.retryForMs,
    backoff: DEFAULT_BACKOFF,
  });

  // Two things stop the job early: shipping failing for good (token revoked, service gone: the
  // job could report nothing, so it must not run unobserved) and a termination signal that
  // arrives before the script started. Once the script runs, signals are passed on to it.
  const stop = new AbortController();
  let stopped: { message: string; runnerExit: number } | undefined;
  let script: RunningScript | undefined;
  const shipping = shipper.run();
  shipping.catch((err: unknown) => {
    stopped ??= { message: `log shipping failed: ${describeError(err)}`, runnerExit: EXIT.RUNNER_ERROR };
    stop.abort();
    script?.kill('SIGKILL');
  });

  const log = (text: string): void => {
    if (!buffer.isClosed) buffer.append('LOG_STREAM_SYSTEM', text);
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (script) {
      diag(`received ${signal}; passing it to the job script`);
      log(`runner received ${signal}; passing it to the job script`);
      script.kill(signal);
      return;
    }
    diag(`received ${signal} before the job script started; stopping`);
    stopped ??= {
      message: `runner received ${signal} before the job script started`,
      runnerExit: exitCodeOf(null, signal),
    };
    stop.abort();
  };
  for (const s of FORWARDED_SIGNALS) process.on(s, onSignal);

  const stoppedOutcome = (s: NonNullable<typeof stopped>): Outcome => ({
    reason: 'FINISH_REASON_RUNNER_ERROR',
    exitCode: 0,
    message: s.message,
    runnerExit: s.runnerExit,
  });
  let outcome: Outcome;
  try {
    outcome = await steps(ctx, buffer, log, stop.signal, (s) => (script = s));
    // A step cut short by the stop (git killed mid-fetch) must not read as a checkout failure.
    if (stopped && outcome.reason !== 'FINISH_REASON_EXITED') {
      outcome = stoppedOutcome(stopped);
      log(outcome.message);
    }
  } catch (err) {
    if (stop.signal.aborted && stopped) {
      outcome = stoppedOutcome(stopped);
    } else {
      diag(`runner error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      outcome = {
        reason: 'FINISH_REASON_RUNNER_ERROR',
        exitCode: 0,
        message: `runner error: ${describeError(err)}`,
      };
    }
    log(outcome.message);
  } finally {
    for (const s of FORWARDED_SIGNALS) process.off(s, onSignal);
  }

  buffer.close();
  await shipping; // throws the shipping failure, if any: nothing more can be reported then
  diag(`all ${buffer.lastSeq - resumeAfter} log lines stored`);

  const finish: FinishJobRequest = {
    jobId: ctx.jobId,
    reason: outcome.reason,
    exitCode: outcome.exitCode,
    message: outcome.message,
    lastSeq: buffer.lastSeq,
    durationMs: Date.now() - startedAt,
  };
  await rpc.finishJob(finish);
  diag(
    `job ${ctx.jobId} finished: ${outcome.reason === 'FINISH_REASON_EXITED' ? `job.sh exited with code ${outcome.exitCode}` : `${outcome.reason}: ${outcome.message}`}`,
  );

  if (outcome.runnerExit !== undefined) return outcome.runnerExit;
  switch (outcome.reason) {
    case 'FINISH_REASON_EXITED':
      return outcome.exitCode;
    case 'FINISH_REASON_RUNNER_ERROR':
      return EXIT.RUNNER_ERROR;
    default:
      return EXIT.JOB_NOT_RUN;
  }
}

async function steps(
  ctx: JobContext,
  buffer: LogBuffer,
  log: (text: string) => void,
  signal: AbortSignal,
  onScript: (s: RunningScript) => void,
): Promise<Outcome> {
  log(`solstice-runner ${RUNNER_VERSION} on ${os.hostname()}: job ${ctx.jobId}`);

  const co = await checkout(ctx, log, signal);
  if (!co.ok) {
    log(co.message);
    return { reason: 'FINISH_REASON_CHECKOUT_FAILED', exitCode: 0, message: co.message };
  }

  const def = await findJobDefinition(ctx.workdir, ctx.commitSha);
  if (def.kind === 'missing') {
    log(def.message);
    return { reason: 'FINISH_REASON_NO_JOB_DEFINITION', exitCode: 0, message: def.message };
  }
  if (def.alsoHasWorkflow) log(`${WORKFLOW_FILE} is not supported by this runner yet; running ${JOB_SCRIPT}`);
  signal.throwIfAborted();

  log(`$ /bin/sh ${JOB_SCRIPT}`);
  const script = runJobScript({
    scriptPath: def.path,
    cwd: ctx.workdir,
    env: jobScriptEnv(process.env, ctx),
    buffer,
    log,
  });
  onScript(script);
  const result = await script.done;
  log(
    result.signal
      ? `${JOB_SCRIPT} was killed by ${result.signal} (exit code ${result.exitCode})`
      : `${JOB_SCRIPT} exited with code ${result.exitCode}`,
  );
  return { reason: 'FINISH_REASON_EXITED', exitCode: result.exitCode, message: '' };
}
