import { Command, Option } from 'clipanion';
import { GcCommandBase } from '../settings-options';

export class GcCommand extends GcCommandBase {
  static override paths = [['gc']];
  static override usage = Command.Usage({
    description: 'Remove finished logs, artifacts and pipelines older than the retention settings',
    details: `
      Applies SOLSTICE_RETAIN_LOGS, SOLSTICE_RETAIN_ARTIFACTS and SOLSTICE_RETAIN_PIPELINES once, to
      PostgreSQL and the blob store alike (the worker also does it on SOLSTICE_GC_INTERVAL). Each is an
      age (30d, 12h) or last:N (the newest N per repository and branch); unset keeps everything.
      Running jobs and pipelines are never touched. Sign-in sessions that ended over a day ago go too,
      whatever the settings (each held a user's OAuth token). With --dry-run it prints what would go
      and changes nothing.
    `,
    examples: [
      ['What a 30-day log retention would remove', 'solstice gc --dry-run --retain-logs 30d'],
      ['Keep the last 50 pipelines per branch', 'SOLSTICE_RETAIN_PIPELINES=last:50 solstice gc'],
    ],
  });

  dryRun = Option.Boolean('--dry-run', false, { description: 'Print what would be removed; remove nothing' });

  async execute(): Promise<number> {
    const cfg = this.config();
    // Loaded when it runs, as every command's work is, so the CLI starts fast.
    const [{ applyGc, describePlan, hasRetention, planGc, retentionPolicy }, { withStore }] =
      await Promise.all([import('../../storage/retention'), import('../context')]);
    const policy = retentionPolicy(cfg);
    if (!hasRetention(policy)) {
      this.context.stdout.write(
        'none of SOLSTICE_RETAIN_LOGS, SOLSTICE_RETAIN_ARTIFACTS, SOLSTICE_RETAIN_PIPELINES is set: logs, artifacts and pipelines are kept\n',
      );
    }
    return withStore(cfg, async (store) => {
      const plan = await planGc(store.db, policy);
      const lines = describePlan(plan);
      const verb = this.dryRun ? 'would remove' : 'removing';
      for (const line of lines) this.context.stdout.write(`${verb} ${line}\n`);
      if (lines.length === 0) this.context.stdout.write('nothing is older than the retention settings\n');
      if (this.dryRun || lines.length === 0) return 0;
      const r = await applyGc(store.db, store.blobs, plan);
      this.context.stdout.write(
        `removed ${r.pipelines} pipeline(s) with ${r.jobs} job(s), ${r.logs} log(s), artifacts of ${r.artifacts} job(s), ${r.sessions} ended sign-in session(s); ${r.blobs} blob(s)\n`,
      );
      return 0;
    });
  }
}
