import { Command, Option } from 'clipanion';
import { SETTINGS } from '../../platform/config';
import { ServiceCommand } from '../settings-options';
import type { StartedPipeline } from '../pipelines';

export class CiLocalCommand extends ServiceCommand {
  static override paths = [['ci-local']];
  static override usage = Command.Usage({
    description: "Run this repository's CI job end to end on this machine",
    details: `
      Brings up everything (as \`solstice up\` does, on embedded defaults unless configured), enqueues
      one job for the current repository's HEAD, prints its log live, stops everything and exits with
      the job's result: 0 success, 1 failure, 3 error, 4 cancelled. With --keep-up the services keep
      running afterwards so you can browse the run in the Temporal Web UI.
      Ctrl-C or SIGTERM cancels the run (its machines are destroyed, as for \`solstice cancel\`),
      waits up to SOLSTICE_SHUTDOWN_GRACE for it to end, stops everything and exits 130 (SIGTERM:
      143); a second signal exits at once.
      Service logs go to stderr at LOG_LEVEL (default here: warn).
    `,
  });

  repo = Option.String('--repo', '.', { description: 'Repository to run (default: the current directory)' });
  commit = Option.String('--commit', 'HEAD', { description: 'Commit to run (default: HEAD)' });
  keepUp = Option.Boolean('--keep-up', false, {
    description: 'Keep the services running after the job ended',
  });

  async execute(): Promise<number> {
    // Quieter services by default here; an explicit LOG_LEVEL still wins.
    process.env[SETTINGS.logLevel.env] ??= 'warn';
    const cfg = this.config();
    // Loaded here, not at the top: every command would otherwise pay for the stack's SDKs.
    const [
      { createLogger },
      { StopSignals, signalExitCode },
      { initTelemetry },
      { startStack },
      { openStore },
      { enqueue },
      { formatStackUrls },
      { connectClient },
    ] = await Promise.all([
      import('../../platform/logger'),
      import('../../platform/shutdown'),
      import('../../platform/telemetry'),
      import('../../devstack/stack'),
      import('../context'),
      import('../enqueue'),
      import('../output'),
      import('../../platform/temporal'),
    ]);
    const log = createLogger('solstice-ci-local');
    // Before anything starts: a signal must not kill this process and leave its PostgreSQL,
    // Temporal dev server and the job's machine running without it.
    const signals = new StopSignals({ log });
    const telemetry = initTelemetry('solstice', cfg);
    const out = this.context.stdout;
    out.write(
      'Starting Solstice (first run: embedded PostgreSQL init and Temporal dev server take a few seconds)...\n',
    );
    try {
      const stack = await startStack(cfg, log);
      try {
        if (signals.requested) return signalExitCode(signals.requested);
        out.write(formatStackUrls(stack.urls));
        const store = await openStore(stack.cfg);
        let code: number;
        try {
          let onStarted: (s: StartedPipeline) => void = () => undefined;
          const started = new Promise<StartedPipeline>((resolve) => (onStarted = resolve));
          const run = enqueue(
            stack.cfg,
            store,
            { repo: this.repo, commit: this.commit, follow: true },
            out,
            onStarted,
          );
          const first = await Promise.race([
            run.then((c) => ({ code: c })),
            signals.whenRequested().then((signal) => ({ signal })),
          ]);
          if ('code' in first) code = first.code;
          else {
            const grace = sleep(stack.cfg.shutdownGraceMs);
            const settled = run.then(
              () => undefined,
              () => undefined,
            );
            // Started by now, or about to be: a run left behind would go on at the next start.
            const pipeline = await Promise.race([started, settled, grace.promise]);
            if (pipeline) {
              out.write(
                `${first.signal}: cancelling pipeline ${pipeline.pipelineId} (send the signal again to stop at once)\n`,
              );
              const temporal = await connectClient(stack.cfg);
              try {
                await temporal.client.workflow.getHandle(pipeline.workflowId).cancel();
              } finally {
                await temporal.close();
              }
              await Promise.race([settled, grace.promise]);
            }
            grace.cancel();
            code = signalExitCode(first.signal);
          }
        } finally {
          await store.close();
        }
        if (this.keepUp && !signals.requested) {
          out.write(
            `Services stay up (Temporal Web UI: ${stack.urls['temporal web ui'] ?? 'n/a'}); Ctrl-C stops them.\n`,
          );
          // The drain itself is the `finally` below; this only waits (a second signal still forces).
          await signals.serve(async () => undefined, stack.done);
        }
        return code;
      } finally {
        await stack.stop();
      }
    } finally {
      signals.release();
      await telemetry.shutdown();
    }
  }
}

/** A timer that can be let go of, so a finished wait does not hold the process up. */
function sleep(ms: number): { promise: Promise<undefined>; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  return { promise, cancel: () => clearTimeout(timer) };
}
