/**
 * One job, start to finish: StartJob → checkout → run the job's steps in order (those of the job
 * file, or `.solstice/job.sh` as a one-step job) while streaming their output, each between
 * SYSTEM start and end lines → upload the job's artifacts (see artifacts.ts) → wait until every
 * line is stored → FinishJob with each step's
 * result. Returns the runner's exit code (the failing step's own, or 0, when the steps ran).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  createRunnerServiceClient,
  type FinishJobRequest,
  type FinishReason__Output,
  type StepResult,
} from '../model/runner-proto';
import { describeError } from '../platform/errors';
import { uploadArtifacts } from './artifacts';
import { DEFAULT_BACKOFF } from './backoff';
import { checkout } from './checkout';
import { diag } from './diag';
import { EXIT } from './errors';
import { MIN_SECRET_LENGTH, type SecretMasker } from '../model/secret-mask';
import { exitCodeOf, jobScriptEnv, jobSecretMasker, runJobScript, type RunningScript } from './execute';
import type { JobContext } from './job-context';
import { JOB_SCRIPT_PATH, WORKFLOW_FILE_PATH } from '../model/job-definition-paths';
import type { JobStep } from '../model/job-file';
import { findJobDefinition } from './job-definition';
import { ActionsJob, type PreparedStep } from './actions';
import { LogBuffer } from './log/buffer';
import { DEFAULT_BATCH, LogShipper } from './log/shipper';
import { describeGrpcError, RunnerRpc, runnerCredentials } from './rpc';
import { startRunnerTracing, type RunnerTracing } from './tracing';
import { RUNNER_VERSION } from './version';

interface Outcome {
  reason: FinishReason__Output;
  /** The script's exit code (EXITED only). */
  exitCode: number;
  message: string;
  /** The runner's exit code when it is not the script's (see EXIT). */
  runnerExit?: number;
  /** An Actions job's outputs. */
  outputs?: Record<string, string>;
}

/** Signals the runner passes on to the job script (a VM shutting down, Ctrl-C in development). */
const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

export async function runJob(ctx: JobContext): Promise<number> {
  const client = createRunnerServiceClient(ctx.contactAddr, runnerCredentials(ctx));
  const tracing = startRunnerTracing(ctx);
  let code: number | undefined;
  try {
    code = await runWithClient(ctx, new RunnerRpc(client, rpcSettings(ctx, tracing)), client, tracing);
    return code;
  } finally {
    client.close();
    // The machine is destroyed as soon as FinishJob is in, which sends this process SIGTERM:
    // the job's spans still go out (within finish's bound) before the runner exits.
    const hold = (signal: NodeJS.Signals): void =>
      diag(`received ${signal}; exiting once the spans are sent`);
    for (const s of FORWARDED_SIGNALS) process.on(s, hold);
    try {
      await tracing.finish({
        ok: code === 0,
        message: code === undefined ? 'runner error' : `exit code ${code}`,
      });
    } finally {
      for (const s of FORWARDED_SIGNALS) process.off(s, hold);
    }
  }
}

function rpcSettings(ctx: JobContext, tracing: RunnerTracing): ConstructorParameters<typeof RunnerRpc>[1] {
  return {
    trace: tracing.carrier,
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
  tracing: RunnerTracing,
): Promise<number> {
  const startedAt = Date.now();
  const started = await rpc.startJob({
    jobId: ctx.jobId,
    runnerVersion: RUNNER_VERSION,
    hostname: os.hostname(),
  });
  const resumeAfter = started.persistedThroughSeq;
  const job: JobContext = {
    ...ctx,
    ...(started.checkoutAuthHeader ? { checkoutAuthHeader: started.checkoutAuthHeader } : {}),
    ...(Number(started.checkoutRetryForMs) > 0
      ? { checkoutRetryForMs: Number(started.checkoutRetryForMs) }
      : {}),
  };
  const stopHeartbeats = startHeartbeats(rpc, ctx);
  try {
    return await runStarted(job, rpc, client, tracing, startedAt, resumeAfter);
  } finally {
    stopHeartbeats();
  }
}

/**
 * Tells the log service every heartbeat interval that this machine is alive, from StartJob until
 * the runner is done, whatever the steps print: the orchestrator takes a machine silent for its
 * liveness window for lost. A failed heartbeat is only noted (once): the next one may get through.
 */
function startHeartbeats(rpc: RunnerRpc, ctx: JobContext): () => void {
  let inFlight = false;
  let warned = false;
  const timer = setInterval(() => {
    if (inFlight) return;
    inFlight = true;
    rpc
      .heartbeat(ctx.jobId)
      .catch((err: unknown) => {
        if (warned) return;
        warned = true;
        diag(
          `heartbeat failed (${describeGrpcError(err)}); still trying every ${ctx.heartbeatIntervalMs} ms`,
        );
      })
      .finally(() => (inFlight = false));
  }, ctx.heartbeatIntervalMs);
  return () => clearInterval(timer);
}

async function runStarted(
  ctx: JobContext,
  rpc: RunnerRpc,
  client: ReturnType<typeof createRunnerServiceClient>,
  tracing: RunnerTracing,
  startedAt: number,
  resumeAfter: number,
): Promise<number> {
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
  let signalled: NodeJS.Signals | undefined;
  const progress = stepReporter(rpc, ctx.jobId);
  const control: StepControl = {
    onScript: (s) => (script = s),
    stopping: () => signalled !== undefined,
    results: [],
    report: progress.report,
  };
  const shipping = shipper.run();
  shipping.catch((err: unknown) => {
    stopped ??= { message: `log shipping failed: ${describeError(err)}`, runnerExit: EXIT.RUNNER_ERROR };
    stop.abort();
    script?.kill('SIGKILL');
  });

  // Secrets are masked here, before a line is buffered: they never leave the machine in clear.
  const secrets = jobSecretMasker(jobScriptEnv(process.env, ctx), ctx);
  const log = (text: string): void => {
    if (!buffer.isClosed) buffer.append('LOG_STREAM_SYSTEM', secrets.maskLine(text));
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (script) {
      signalled ??= signal;
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
  // Once per job: a runner restarted mid-job resumes after lines already stored.
  if (ctx.machineNote && resumeAfter === 0) log(ctx.machineNote);

  const stoppedOutcome = (s: NonNullable<typeof stopped>): Outcome => ({
    reason: 'FINISH_REASON_RUNNER_ERROR',
    exitCode: 0,
    message: s.message,
    runnerExit: s.runnerExit,
  });
  let outcome: Outcome;
  try {
    outcome = await runSteps(ctx, buffer, log, stop.signal, control, secrets);
    // A step cut short by the stop (git killed mid-fetch, a script the runner killed) must read
    // as neither a checkout failure nor the script's own.
    if (stopped) {
      outcome = stoppedOutcome(stopped);
      log(outcome.message);
    } else if (signalled && outcome.reason === 'FINISH_REASON_EXITED' && outcome.exitCode !== 0) {
      // The machine is shutting down or being destroyed: whatever that did to the script (143,
      // 137) is an infrastructure failure, not the script's.
      outcome = {
        reason: 'FINISH_REASON_INTERRUPTED',
        exitCode: outcome.exitCode,
        message: `the runner received ${signalled} (the machine is shutting down or being destroyed) and stopped the job; exit code ${outcome.exitCode} is not the job's own`,
      };
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

  for (const r of control.results) tracing.step(r);

  // Whenever the steps ran, failed ones included: a failing job's reports are often what is needed.
  // Before FinishJob, which ends the job and so revokes the token uploads authenticate with.
  if (outcome.reason === 'FINISH_REASON_EXITED' && !stopped && ctx.artifacts.length > 0) {
    try {
      await uploadArtifacts({
        client,
        metadata: () => rpc.metadata(),
        jobId: ctx.jobId,
        workdir: ctx.workdir,
        patterns: ctx.artifacts,
        log,
        retryForMs: ctx.retryForMs,
        backoff: DEFAULT_BACKOFF,
      });
    } catch (err) {
      log(`artifacts: upload failed: ${describeError(err)}`);
    }
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
    steps: control.results,
    ...(outcome.outputs ? { outputs: outcome.outputs } : {}),
  };
  // A progress report still in flight must not land after FinishJob recorded the steps.
  await progress.settled();
  await rpc.finishJob(finish);
  diag(
    `job ${ctx.jobId} finished: ${outcome.reason === 'FINISH_REASON_EXITED' ? `steps ended with exit code ${outcome.exitCode}` : `${outcome.reason}: ${outcome.message}`}`,
  );

  if (outcome.runnerExit !== undefined) return outcome.runnerExit;
  switch (outcome.reason) {
    case 'FINISH_REASON_EXITED':
      return outcome.exitCode;
    case 'FINISH_REASON_RUNNER_ERROR':
      return EXIT.RUNNER_ERROR;
    case 'FINISH_REASON_INTERRUPTED':
      return outcome.exitCode;
    default:
      return EXIT.JOB_NOT_RUN;
  }
}

/** A step as the runner runs it: one the job file gave, or the checkout's job.sh as a `file`. */
interface PlannedStep extends Omit<JobStep, 'run'> {
  /** Inline script (written to a file and run with `sh -e`), or undefined for `file`. */
  run?: string;
  file?: string;
}

/** How long the checkout waits for an unreachable repository when StartJob did not say. */
const DEFAULT_CHECKOUT_RETRY_FOR_MS = 5 * 60_000;

/** How long a step that died of a signal waits for that signal to reach the runner as well. */
const SIGNAL_SETTLE_MS = 300;

/** Killed by a signal, or a shell reporting a child's death by SIGHUP/SIGINT/SIGKILL/SIGTERM. */
function isSignalExit(r: { exitCode: number; signal: NodeJS.Signals | null }): boolean {
  return r.signal !== null || [129, 130, 137, 143].includes(r.exitCode);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

async function runSteps(
  ctx: JobContext,
  buffer: LogBuffer,
  log: (text: string) => void,
  signal: AbortSignal,
  control: StepControl,
  secrets: SecretMasker,
): Promise<Outcome> {
  log(`solstice-runner ${RUNNER_VERSION} on ${os.hostname()}: job ${ctx.jobId}`);
  if (secrets.tooShort.length > 0) {
    log(
      `not masked in this log (shorter than ${MIN_SECRET_LENGTH} characters): ${secrets.tooShort.join(', ')}`,
    );
  }

  const co = await checkout(ctx, log, signal, {
    authHeader: ctx.checkoutAuthHeader,
    retryForMs: ctx.checkoutRetryForMs ?? DEFAULT_CHECKOUT_RETRY_FOR_MS,
  });
  if (!co.ok) {
    log(co.message);
    return {
      reason:
        co.kind === 'missing-commit' ? 'FINISH_REASON_CHECKOUT_FAILED' : 'FINISH_REASON_CHECKOUT_UNAVAILABLE',
      exitCode: 0,
      message: co.message,
    };
  }

  let plan: PlannedStep[];
  if (ctx.steps) {
    plan = ctx.steps;
  } else {
    const def = await findJobDefinition(ctx.workdir, ctx.commitSha);
    if (def.kind === 'missing') {
      log(def.message);
      return { reason: 'FINISH_REASON_NO_JOB_DEFINITION', exitCode: 0, message: def.message };
    }
    if (def.alsoHasWorkflow)
      log(
        `no steps were given for this job; running ${JOB_SCRIPT_PATH} (the pipeline reads ${WORKFLOW_FILE_PATH})`,
      );
    plan = [{ name: JOB_SCRIPT_PATH, file: def.path, continueOnError: false }];
  }
  signal.throwIfAborted();

  // Inline scripts go next to the checkout, not into it: the repository's tree stays as committed.
  const scriptDir = plan.some((p) => p.run !== undefined)
    ? await mkdtemp(path.join(path.dirname(ctx.workdir), '.solstice-steps-'))
    : undefined;
  // An Actions workflow's job: its steps decide with their `if` whether they run after a failure.
  const actions = ctx.actions
    ? new ActionsJob(ctx.actions, ctx.secrets, ctx.workdir, secrets, log, ctx.needsOutputs)
    : undefined;
  try {
    let failedExit: number | undefined;
    for (const [i, step] of plan.entries()) {
      const index = i + 1;
      const title = `step ${index}/${plan.length} "${step.name}"`;
      let prepared: PreparedStep | undefined;
      let skipWhy: string | undefined;
      if (actions && step.run !== undefined) {
        if (control.stopping()) actions.cancel();
        try {
          prepared = await actions.prepare({ ...step, run: step.run }, index, scriptDir as string);
          skipWhy = prepared.skip;
        } catch (err) {
          // A broken expression fails its step, as on GitHub; later steps' `if` still decide.
          log(`${title} failed: ${describeError(err)}`);
          const failed: StepResult = {
            index,
            name: step.name,
            outcome: 'STEP_OUTCOME_FAILURE',
            exitCode: 1,
            continueOnError: step.continueOnError,
          };
          control.results.push(failed);
          control.report(failed, plan.length);
          await actions.finish({ ...step, run: step.run }, undefined, 'failure');
          failedExit ??= 1;
          continue;
        }
      } else if (failedExit !== undefined || control.stopping()) {
        skipWhy = failedExit !== undefined ? 'an earlier step failed' : 'the job is stopping';
      }
      if (skipWhy !== undefined) {
        log(`${title} skipped: ${skipWhy}`);
        const skipped: StepResult = {
          index,
          name: step.name,
          outcome: 'STEP_OUTCOME_SKIPPED',
          continueOnError: step.continueOnError,
        };
        control.results.push(skipped);
        control.report(skipped, plan.length);
        if (actions && step.run !== undefined)
          await actions.finish({ ...step, run: step.run }, prepared, 'skipped');
        continue;
      }
      signal.throwIfAborted();
      const workingDirectory = prepared ? prepared.workingDirectory : step.workingDirectory;
      const cwd = workingDirectory ? path.resolve(ctx.workdir, workingDirectory) : ctx.workdir;
      if (path.relative(ctx.workdir, cwd).split(path.sep).includes('..'))
        throw new Error(
          `step "${step.name}": working directory "${workingDirectory}" is outside the checkout`,
        );
      let scriptPath = step.file;
      if (scriptPath === undefined) {
        scriptPath = path.join(scriptDir as string, `step-${index}.sh`);
        await writeFile(scriptPath, prepared ? prepared.script : (step.run ?? ''), { mode: 0o700 });
      }
      log(`${title} started${workingDirectory ? ` in ${workingDirectory}` : ''}`);
      if (step.file !== undefined) log(`$ /bin/sh ${JOB_SCRIPT_PATH}`);
      const firstSeq = buffer.lastSeq;
      const startedAt = Date.now();
      control.report(
        { index, name: step.name, continueOnError: step.continueOnError, startedUnixMs: startedAt, firstSeq },
        plan.length,
      );
      const script = runJobScript({
        scriptPath,
        cwd,
        env: prepared
          ? { ...jobScriptEnv(process.env, ctx), ...prepared.env }
          : jobScriptEnv(process.env, ctx),
        buffer,
        log,
        shellArgs: prepared ? prepared.shellArgs : step.file === undefined ? ['-e'] : [],
        ...(prepared ? { shell: prepared.shell, onLine: actions?.onLine } : {}),
        label: step.file === undefined ? `step "${step.name}"` : JOB_SCRIPT_PATH,
        secrets,
      });
      control.onScript(script);
      const stepTimeout = prepared?.timeoutMs
        ? setTimeout(() => {
            log(`${title} ran longer than its timeout-minutes; stopping it`);
            script.kill('SIGTERM');
          }, prepared.timeoutMs)
        : undefined;
      const result = await script.done.finally(() => clearTimeout(stepTimeout));
      const durationMs = Date.now() - startedAt;
      const ok = result.exitCode === 0;
      // The signal that ended the step may have reached the runner too (a machine being destroyed
      // signals every process at once): let that arrive before judging whose doing it was.
      if (!ok && !control.stopping() && isSignalExit(result)) await delay(SIGNAL_SETTLE_MS);
      const interrupted = !ok && control.stopping();
      const how = ok
        ? 'succeeded'
        : interrupted
          ? `was interrupted (exit code ${result.exitCode})`
          : result.signal
            ? `was killed by ${result.signal} (exit code ${result.exitCode})`
            : `failed with exit code ${result.exitCode}`;
      log(
        `${title} ${how} in ${seconds(durationMs)}` +
          (!ok && !interrupted && step.continueOnError ? '; continue-on-error: the job goes on' : ''),
      );
      const ended: StepResult = {
        index,
        name: step.name,
        outcome: ok
          ? 'STEP_OUTCOME_SUCCESS'
          : interrupted
            ? 'STEP_OUTCOME_INTERRUPTED'
            : 'STEP_OUTCOME_FAILURE',
        exitCode: result.exitCode,
        continueOnError: step.continueOnError,
        startedUnixMs: startedAt,
        durationMs,
        firstSeq,
        lastSeq: buffer.lastSeq,
      };
      control.results.push(ended);
      control.report(ended, plan.length);
      const continueOnError = prepared ? prepared.continueOnError : step.continueOnError;
      if (actions && step.run !== undefined) {
        await actions.finish({ ...step, run: step.run }, prepared, ok ? 'success' : 'failure');
        const summary = actions.summaries.length;
        if (summary > 0 && prepared) {
          for (const line of (actions.summaries[summary - 1] ?? '').trimEnd().split('\n'))
            log(`step summary: ${line}`);
          actions.summaries.length = 0;
        }
      }
      if (!ok && !continueOnError) failedExit ??= result.exitCode;
    }
    return {
      reason: 'FINISH_REASON_EXITED',
      exitCode: failedExit ?? 0,
      message: '',
      ...(actions ? { outputs: actions.outputs() } : {}),
    };
  } finally {
    if (scriptDir) await rm(scriptDir, { recursive: true, force: true });
  }
}

/** What the step loop shares with runWithClient: the running script, stop requests, results. */
interface StepControl {
  onScript(s: RunningScript): void;
  /** A termination signal arrived: run no further step. */
  stopping(): boolean;
  results: StepResult[];
  /** Tells the log service a step started (outcome UNSPECIFIED) or ended; never waits. */
  report(step: StepResult, total: number): void;
}

/**
 * Step progress for the job page and the Web UI: reports go out one after another, in order,
 * without holding a step up; a failure costs only the live view (said once, on stderr).
 */
function stepReporter(
  rpc: RunnerRpc,
  jobId: string,
): { report: StepControl['report']; settled(): Promise<void> } {
  let chain = Promise.resolve();
  let warned = false;
  return {
    report(step, total) {
      chain = chain
        .then(() => rpc.reportStep({ jobId, step, total }))
        .catch((err: unknown) => {
          if (warned) return;
          warned = true;
          diag(
            `step progress not reported (${describeGrpcError(err)}); the job page shows the steps at the end`,
          );
        });
    },
    settled: () => chain,
  };
}
