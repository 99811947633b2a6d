import { Command, Option } from 'clipanion';
import { SETTINGS } from '../../platform/config';
import { ServiceCommand } from '../settings-options';

export class CiLocalCommand extends ServiceCommand {
  static override paths = [['ci-local']];
  static override usage = Command.Usage({
    description: "Run this repository's CI job end to end on this machine",
    details: `
      Brings up everything (as \`solstice up\` does, on embedded defaults unless configured), enqueues
      one job for the current repository's HEAD, prints its log live, stops everything and exits with
      the job's result: 0 success, 1 failure, 3 error, 4 cancelled. With --keep-up the services keep
      running afterwards so you can browse the run in the Temporal Web UI.
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
      { serveUntilSignal },
      { initTelemetry },
      { startStack },
      { openStore },
      { enqueue },
      { formatStackUrls },
    ] = await Promise.all([
      import('../../platform/logger'),
      import('../../platform/shutdown'),
      import('../../platform/telemetry'),
      import('../../devstack/stack'),
      import('../context'),
      import('../enqueue'),
      import('../output'),
    ]);
    const log = createLogger('solstice-ci-local');
    const telemetry = initTelemetry('solstice', cfg);
    const out = this.context.stdout;
    out.write(
      'Starting Solstice (first run: embedded PostgreSQL init and Temporal dev server take a few seconds)...\n',
    );
    const stack = await startStack(cfg, log);
    let code: number;
    try {
      out.write(formatStackUrls(stack.urls));
      const store = await openStore(stack.cfg);
      try {
        code = await enqueue(stack.cfg, store, { repo: this.repo, commit: this.commit, follow: true }, out);
      } finally {
        await store.close();
      }
      if (this.keepUp) {
        out.write(
          `Services stay up (Temporal Web UI: ${stack.urls['temporal web ui'] ?? 'n/a'}); Ctrl-C stops them.\n`,
        );
        // The drain itself is the `finally` below; this only waits (a second signal still forces).
        await serveUntilSignal({ log, done: stack.done, stop: async () => undefined });
      }
    } finally {
      await stack.stop();
      await telemetry.shutdown();
    }
    return code;
  }
}
