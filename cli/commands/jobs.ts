import { Command, Option } from 'clipanion';
import { ConnectedCommand } from '../settings-options';
import { openStore } from '../context';
import { formatJob, formatJobRow, formatSteps } from '../output';

export class JobsCommand extends ConnectedCommand {
  static override paths = [['jobs']];
  static override usage = Command.Usage({
    description: 'List recent jobs, newest first',
    examples: [
      ['The last 20 jobs', 'solstice jobs'],
      ['As JSON', 'solstice jobs --limit 100 --json'],
    ],
  });

  limit = Option.String('--limit', '20', { description: 'How many jobs to show' });
  json = Option.Boolean('--json', false, { description: 'Print JSON lines instead of a table' });

  async execute(): Promise<number> {
    const store = await openStore(this.config());
    try {
      const jobs = await store.jobs.listJobs(Math.max(1, Number(this.limit) || 20));
      for (const job of jobs)
        this.context.stdout.write(`${this.json ? JSON.stringify(job) : formatJobRow(job)}\n`);
      if (jobs.length === 0 && !this.json)
        this.context.stdout.write('no jobs yet; `solstice enqueue` starts one\n');
      return 0;
    } finally {
      await store.close();
    }
  }
}

export class StatusCommand extends ConnectedCommand {
  static override paths = [['status']];
  static override usage = Command.Usage({
    description: "Show a job's state, exit code and timing",
    details: 'The job may be given as its full id or a unique prefix (at least 4 characters).',
    examples: [['A job by id prefix', 'solstice status 3f2a9c']],
  });

  job = Option.String({ name: 'job' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  async execute(): Promise<number> {
    const store = await openStore(this.config());
    try {
      const job = await store.jobs.resolveJob(this.job);
      const lines = await store.jobs.countLogLines(job.id);
      const steps = await store.jobs.listSteps(job.id);
      this.context.stdout.write(
        this.json
          ? `${JSON.stringify({ ...job, logLines: lines, steps })}\n`
          : `${formatJob(job, { 'log lines': String(lines) })}\n${formatSteps(steps)}`,
      );
      return 0;
    } finally {
      await store.close();
    }
  }
}
