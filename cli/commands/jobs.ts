import { Command, Option } from 'clipanion';
import { ConnectedCommand } from '../settings-options';

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
    const [{ withStore }, { formatJobRow }] = await Promise.all([import('../context'), import('../output')]);
    return withStore(this.config(), async (store) => {
      const jobs = await store.jobs.listJobs(Math.max(1, Number(this.limit) || 20));
      for (const job of jobs)
        this.context.stdout.write(`${this.json ? JSON.stringify(job) : formatJobRow(job)}\n`);
      if (jobs.length === 0 && !this.json)
        this.context.stdout.write('no jobs yet; `solstice enqueue` starts one\n');
      return 0;
    });
  }
}

export class StatusCommand extends ConnectedCommand {
  static override paths = [['status']];
  static override usage = Command.Usage({
    description: 'Show a pipeline (its jobs and their steps) or a job (its state, timing and steps)',
    details: 'Give a pipeline or job id, in full or a unique prefix (at least 4 characters).',
    examples: [
      ['A pipeline or job by id prefix', 'solstice status 3f2a9c'],
      ['As JSON', 'solstice status 3f2a9c --json'],
    ],
  });

  job = Option.String({ name: 'pipeline|job' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  async execute(): Promise<number> {
    const [{ withStore }, { formatJobStatus, formatPipeline, pipelineJson, queuePositionOf, resolveTarget }] =
      await Promise.all([import('../context'), import('../pipelines')]);
    return withStore(this.config(), async (store) => {
      const target = await resolveTarget(store, this.job);
      if (target.kind === 'pipeline') {
        this.context.stdout.write(
          this.json
            ? `${JSON.stringify(await pipelineJson(store, target.pipeline))}\n`
            : await formatPipeline(store, target.pipeline),
        );
        return 0;
      }
      const { job } = target;
      if (this.json) {
        const lines = await store.jobs.countLogLines(job.id);
        const steps = await store.jobs.listSteps(job.id);
        const queuePosition = job.state === 'queued' ? await queuePositionOf(store, job.id) : undefined;
        this.context.stdout.write(`${JSON.stringify({ ...job, logLines: lines, steps, queuePosition })}\n`);
      } else this.context.stdout.write(await formatJobStatus(store, job));
      return 0;
    });
  }
}
