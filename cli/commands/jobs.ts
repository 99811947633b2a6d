import { Command, Option } from 'clipanion';
import { InputError } from '../../platform/errors';
import type { JobRecord } from '../../storage/job-store';
import { ConnectedCommand } from '../settings-options';

const JOB_STATES = ['queued', 'provisioning', 'running', 'success', 'failure', 'error', 'cancelled'] as const;

/** `--limit`: a whole number of at least 1; anything else is refused with the reason. */
export function readLimit(raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < 1)
    throw new InputError(`--limit must be a whole number of at least 1, got "${raw}"`);
  return n;
}

export class JobsCommand extends ConnectedCommand {
  static override paths = [['jobs']];
  static override usage = Command.Usage({
    description: 'List recent jobs, newest first',
    details: `
      One row per job: id, state, its name in its pipeline (matrix values included, e.g.
      \`test[node=20]\`), repository and commit, ref, when it was created and how long it ran.
    `,
    examples: [
      ['The last 20 jobs', 'solstice jobs'],
      ['Failed jobs of main', 'solstice jobs --branch main --state failure'],
      ['As JSON', 'solstice jobs --limit 100 --json'],
    ],
  });

  limit = Option.String('--limit', '20', { description: 'How many jobs to show (default: 20)' });
  repo = Option.String('--repo', {
    description: 'Only jobs of repositories whose URL or path contains this',
  });
  branch = Option.String('--branch', { description: 'Only jobs of this branch' });
  state = Option.String('--state', { description: `Only jobs in this state: ${JOB_STATES.join(', ')}` });
  json = Option.Boolean('--json', false, { description: 'Print JSON lines instead of a table' });

  async execute(): Promise<number> {
    const limit = readLimit(this.limit);
    const state = this.state as (typeof JOB_STATES)[number] | undefined;
    if (state !== undefined && !JOB_STATES.includes(state))
      throw new InputError(`--state must be one of ${JOB_STATES.join(', ')}, got "${this.state}"`);
    const cfg = this.config();
    const [{ withStore }, { formatJobRows }, { PipelineStore }, { remoteMode }] = await Promise.all([
      import('../context'),
      import('../output'),
      import('../../storage/pipeline-store'),
      import('../remote-mode'),
    ]);
    if (remoteMode(cfg)) {
      const { remoteSession } = await import('../remote');
      const jobs = await remoteSession(cfg).api.listJobs(limit, {
        repo: this.repo,
        branch: this.branch,
        state,
      });
      return this.print(
        jobs,
        new Map(jobs.flatMap((j) => (j.name ? [[j.id, j.name] as const] : []))),
        formatJobRows,
      );
    }
    return withStore(cfg, async (store) => {
      const jobs = await store.jobs.listJobs(limit, { repo: this.repo, branch: this.branch, state });
      const names = await new PipelineStore(store.db).jobNames(jobs.map((j) => j.id));
      return this.print(jobs, names, formatJobRows);
    });
  }

  private print(
    jobs: JobRecord[],
    names: Map<string, string>,
    formatJobRows: (jobs: JobRecord[], names: Map<string, string>) => string,
  ): number {
    {
      if (this.json)
        for (const job of jobs)
          this.context.stdout.write(`${JSON.stringify({ ...job, name: names.get(job.id) ?? null })}\n`);
      else if (jobs.length > 0) this.context.stdout.write(formatJobRows(jobs, names));
      else
        this.context.stdout.write(
          this.repo || this.branch || this.state
            ? 'no jobs match\n'
            : 'no jobs yet; `solstice enqueue` starts one\n',
        );
      return 0;
    }
  }
}

export class StatusCommand extends ConnectedCommand {
  static override paths = [['status']];
  static override usage = Command.Usage({
    description: 'Show a pipeline (its jobs and their steps) or a job (its state, timing and steps)',
    details: `
      Give a pipeline or job id, in full or a unique prefix (at least 4 characters); a pipeline
      as <repo>#<number>, the repository's run number that \`solstice pipelines\` shows (app#12,
      acme/app#12 or ../app#12; "#12" alone when only one repository has a #12, or for the
      repository of the current directory; quote it, a shell drops a word that starts with #);
      or a job as <pipeline>/<job name> (3f2a9c/test[node=20], app#12/lint).
    `,
    examples: [
      ['A pipeline or job by id prefix', 'solstice status 3f2a9c'],
      ['Pipeline 12 of repository app', 'solstice status app#12'],
      ['As JSON', 'solstice status 3f2a9c --json'],
    ],
  });

  job = Option.String({ name: 'pipeline|job|pipeline/job' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  async execute(): Promise<number> {
    const cfg = this.config();
    const [
      { withStore },
      { formatJobStatus, formatPipeline, pipelineJson, queuePositionOf, resolveTarget, stepsJson },
      { remoteMode },
      { storeSource },
    ] = await Promise.all([
      import('../context'),
      import('../pipelines'),
      import('../remote-mode'),
      import('../run-source'),
    ]);
    if (remoteMode(cfg)) {
      const { remoteSession } = await import('../remote');
      const remote = remoteSession(cfg);
      const target = await remote.resolveTarget(this.job);
      if (!this.json) {
        this.context.stdout.write(
          target.kind === 'pipeline'
            ? await formatPipeline(remote.source, target.pipeline)
            : await formatJobStatus(remote.source, target.job, target.name),
        );
        return 0;
      }
      const view =
        target.kind === 'pipeline'
          ? await remote.api.request('GET', `/v1/pipelines/${target.pipeline.id}`)
          : await remote.api.jobJson(target.job.id);
      this.context.stdout.write(`${JSON.stringify(view)}\n`);
      return 0;
    }
    return withStore(cfg, async (store) => {
      const target = await resolveTarget(store, this.job);
      if (target.kind === 'pipeline') {
        this.context.stdout.write(
          this.json
            ? `${JSON.stringify(await pipelineJson(store, target.pipeline))}\n`
            : await formatPipeline(storeSource(store), target.pipeline),
        );
        return 0;
      }
      const { job, name } = target;
      if (this.json) {
        const lines = await store.jobs.countLogLines(job.id);
        const steps = await stepsJson(store, job.id);
        const queuePosition = job.state === 'queued' ? await queuePositionOf(store, job.id) : undefined;
        this.context.stdout.write(
          `${JSON.stringify({ ...job, name: name ?? null, logLines: lines, ...steps, queuePosition })}\n`,
        );
      } else this.context.stdout.write(await formatJobStatus(storeSource(store), job, name));
      return 0;
    });
  }
}
