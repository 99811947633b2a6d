import { Command, Option } from 'clipanion';
import { InputError } from '../../platform/errors';
import type { Config } from '../../platform/config';
import { ConnectedCommand } from '../settings-options';
import { readLimit } from './jobs';

// What the commands run is loaded when they run, so `--help` and the others stay fast.
const load = () =>
  Promise.all([
    import('../context'),
    import('../output'),
    import('../pipelines'),
    import('../../storage/pipeline-store'),
    import('../../platform/temporal'),
    import('../../model/repo-url'),
    import('../remote-mode'),
  ]);

const remote = async (cfg: Config) => (await import('../remote')).remoteSession(cfg);
const FINAL = ['success', 'failure', 'error', 'cancelled'];

export class PipelinesCommand extends ConnectedCommand {
  static override paths = [['pipelines']];
  static override usage = Command.Usage({
    description: 'List recent pipelines, newest first',
    details: `
      One row per pipeline: id, its number in its repository (\`app#12\`, which \`status\`,
      \`logs\`, \`cancel\` and \`rerun\` accept as well as the id), state, repository and commit,
      ref, and when it started.
    `,
    examples: [['The last 20 pipelines', 'solstice pipelines']],
  });

  limit = Option.String('--limit', '20', { description: 'How many pipelines to show' });
  json = Option.Boolean('--json', false, { description: 'Print JSON lines instead of a table' });

  async execute(): Promise<number> {
    const cfg = this.config();
    const [
      { withStore },
      { ago, stateLabel },
      { pipelineLabel },
      { PipelineStore },
      ,
      { repoAtCommit },
      { remoteMode },
    ] = await load();
    const limit = readLimit(this.limit);
    const listed = remoteMode(cfg)
      ? (await remote(cfg)).api.listPipelines(limit)
      : withStore(cfg, (store) => new PipelineStore(store.db).listPipelines(limit));
    {
      const list = await listed;
      const width = Math.max(0, ...list.map((p) => pipelineLabel(p).length));
      for (const p of list) {
        this.context.stdout.write(
          this.json
            ? `${JSON.stringify(p)}\n`
            : `${p.id}  ${pipelineLabel(p).padEnd(width)}  ${stateLabel(p.state).padEnd(12)}  ${repoAtCommit(p.repoUrl, p.commitSha)}  ${p.ref ?? '-'}  ${ago(p.createdAt)}\n`,
        );
      }
      if (list.length === 0 && !this.json)
        this.context.stdout.write('no pipelines yet; `solstice enqueue` starts one\n');
      return 0;
    }
  }
}

export class CancelCommand extends ConnectedCommand {
  static override paths = [['cancel']];
  static override usage = Command.Usage({
    description: 'Cancel a pipeline (all its jobs) or one job',
    details: `
      Cancelled jobs always destroy their machine. Cancelling one job of a pipeline skips the
      jobs that need it. Give a full id or a unique prefix (at least 4 characters), a pipeline
      as <repo>#<number> (app#12) or a job as <pipeline>/<job name>.
      With --wait, waits until everything stopped and exits 4 (cancelled) or with the state it
      reached first (0 success, 1 failure, 3 error).
    `,
    examples: [
      ['A pipeline', 'solstice cancel 3f2a9c'],
      ['One job, waiting until its machine is gone', 'solstice cancel 7b1e04 --wait'],
    ],
  });

  target = Option.String({ name: 'pipeline|job' });
  wait = Option.Boolean('--wait', false, { description: 'Wait until it has stopped' });

  async execute(): Promise<number> {
    const cfg = this.config();
    const [
      { withStore },
      { exitCodeForState, stateLabel },
      { cancelTarget, resolveTarget },
      { PipelineStore },
      { connectClient },
      ,
      { remoteMode },
    ] = await load();
    if (remoteMode(cfg)) {
      const r = await remote(cfg);
      const target = await r.resolveTarget(this.target);
      const what = target.kind === 'pipeline' ? `pipeline ${target.pipeline.id}` : `job ${target.job.id}`;
      const path =
        target.kind === 'pipeline' ? `/v1/pipelines/${target.pipeline.id}` : `/v1/jobs/${target.job.id}`;
      const { workflowId } = await r.api.request<{ workflowId: string }>('POST', `${path}/cancel`);
      this.context.stdout.write(`cancel requested: ${what} (${workflowId})\n`);
      if (!this.wait) return 0;
      for (;;) {
        const now =
          target.kind === 'pipeline'
            ? await r.source.getPipeline(target.pipeline.id)
            : await r.source.getJob(target.job.id);
        if (now && FINAL.includes(now.state)) {
          this.context.stdout.write(`${stateLabel(now.state)}\n`);
          return exitCodeForState(now.state);
        }
        await new Promise((res) => setTimeout(res, 250));
      }
    }
    return withStore(cfg, async (store) => {
      const target = await resolveTarget(store, this.target);
      const what = target.kind === 'pipeline' ? `pipeline ${target.pipeline.id}` : `job ${target.job.id}`;
      const current = target.kind === 'pipeline' ? target.pipeline.state : target.job.state;
      if (!['queued', 'provisioning', 'running'].includes(current))
        throw new InputError(
          `${what} already ended ${current}; there is nothing to cancel`,
          '`solstice status` shows how it ended',
        );
      const temporal = await connectClient(cfg);
      try {
        const workflowId = await cancelTarget(temporal.client, target);
        this.context.stdout.write(`cancel requested: ${what} (${workflowId})\n`);
        if (!this.wait) return 0;
        await temporal.client.workflow
          .getHandle(workflowId)
          .result()
          .catch(() => undefined);
      } finally {
        await temporal.close();
      }
      const state =
        target.kind === 'pipeline'
          ? (await new PipelineStore(store.db).getPipeline(target.pipeline.id))?.state
          : (await store.jobs.getJob(target.job.id))?.state;
      this.context.stdout.write(`${stateLabel(state ?? 'unknown')}\n`);
      return exitCodeForState(state ?? 'error');
    });
  }
}

export class RerunCommand extends ConnectedCommand {
  static override paths = [['rerun']];
  static override usage = Command.Usage({
    description: 'Run a pipeline again at the same commit',
    details: `
      Starts a new pipeline for the same commit, ref and event. With --failed, jobs that
      succeeded are not run again (the new pipeline shows their earlier runs): only the jobs
      that failed, errored, were cancelled or skipped run, i.e. the failed ones and what needs
      them. With --follow, prints the jobs' logs and exits with the new pipeline's result
      (0 success, 1 failure, 3 error, 4 cancelled).
    `,
    examples: [
      ['Everything again', 'solstice rerun 3f2a9c'],
      ['Only what failed', 'solstice rerun 3f2a9c --failed --follow'],
    ],
  });

  pipeline = Option.String({ name: 'pipeline' });
  failed = Option.Boolean('--failed', false, { description: 'Rerun only failed jobs and their dependents' });
  follow = Option.Boolean('-f,--follow', false, {
    description: "Print the jobs' logs and wait for the result",
  });

  async execute(): Promise<number> {
    const cfg = this.config();
    const [
      { withStore },
      { exitCodeForState, stateLabel },
      { followPipeline, rerun, resolveTarget },
      ,
      { connectClient },
      ,
      { remoteMode },
    ] = await load();
    const { storeSource } = await import('../run-source');
    if (remoteMode(cfg)) {
      const r = await remote(cfg);
      const target = await r.resolveTarget(this.pipeline);
      if (target.kind !== 'pipeline')
        throw new InputError(
          `${this.pipeline} is a job, not a pipeline`,
          `rerun its pipeline: \`solstice status ${target.job.id}\` names it`,
        );
      const started = await r.api.request<{ pipelineId: string; workflowId: string; reused: string[] }>(
        'POST',
        `/v1/pipelines/${target.pipeline.id}/rerun`,
        { failed: this.failed },
      );
      return this.report(
        started,
        () => followPipeline(r.source, started.pipelineId, this.context.stdout),
        stateLabel,
        exitCodeForState,
      );
    }
    return withStore(cfg, async (store) => {
      const target = await resolveTarget(store, this.pipeline);
      if (target.kind !== 'pipeline')
        throw new InputError(
          `${this.pipeline} is a job, not a pipeline`,
          `rerun its pipeline: \`solstice status ${target.job.id}\` names it`,
        );
      const temporal = await connectClient(cfg);
      let started: Awaited<ReturnType<typeof rerun>>;
      try {
        started = await rerun(temporal.client, cfg, store, target.pipeline, this.failed);
      } finally {
        await temporal.close();
      }
      return this.report(
        started,
        () => followPipeline(storeSource(store), started.pipelineId, this.context.stdout),
        stateLabel,
        exitCodeForState,
      );
    });
  }

  /** The new pipeline's ids; with --follow, its jobs' logs and its result. */
  private async report(
    started: { pipelineId: string; workflowId: string; reused: string[] },
    follow: () => Promise<{ id: string; state: string; message: string | null }>,
    stateLabel: (s: string) => string,
    exitCodeForState: (s: string) => number,
  ): Promise<number> {
    this.context.stdout.write(`pipeline ${started.pipelineId}\nworkflow ${started.workflowId}\n`);
    if (started.reused.length > 0)
      this.context.stdout.write(`not run again (succeeded before): ${started.reused.join(', ')}\n`);
    if (!this.follow) return 0;
    const p = await follow();
    this.context.stdout.write(
      `pipeline ${p.id} ${stateLabel(p.state)}${p.message ? `: ${p.message}` : ''}\n`,
    );
    return exitCodeForState(p.state);
  }
}
