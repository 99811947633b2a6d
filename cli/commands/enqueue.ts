import { Command, Option } from 'clipanion';
import { InputError } from '../../platform/errors';
import type { Config } from '../../platform/config';
import { ConnectedCommand } from '../settings-options';

const ENQUEUE_EVENTS = ['push', 'pull_request', 'manual'] as const;
type EnqueueEvent = (typeof ENQUEUE_EVENTS)[number];

export class EnqueueCommand extends ConnectedCommand {
  static override settings = ConnectedCommand.withSettings(
    'jobTimeoutMs',
    'bootTimeoutMs',
    'temporalUiPort',
    'amqpUrl',
    'amqpPrefix',
  );
  static override paths = [['enqueue']];
  static override usage = Command.Usage({
    description: 'Run a CI job for a commit',
    details: `
      Starts a job for a commit of a repository (by default: HEAD of the repository you are in).
      Before anything starts, the commit must exist and contain .solstice/workflow.kdl,
      .solstice/job.sh or Actions workflows (.forgejo/workflows, .gitea/workflows, .github/workflows;
      see docs/actions.md); otherwise nothing is recorded and the command exits 2.

      By default the request goes through RabbitMQ (AMQP_URL) as a JobRequest v1, and the bridge
      (\`solstice bridge\`, part of \`solstice up\`) starts it. When RabbitMQ is unreachable or no bridge
      consumes the queue, it says so and starts the job directly; --direct always starts directly.

      Started directly, the commit runs as a pipeline: the jobs of .solstice/workflow.kdl (or
      .solstice/job.sh as one job). It prints the pipeline id, its Temporal workflow id and (for a
      local Temporal) its Web UI page; \`solstice status <pipeline>\` shows its jobs and steps.
      With --follow it then prints each job's live log and exits with the result:
      0 success, 1 failure (a script failed), 3 error (infrastructure), 4 cancelled.
      Other exit codes: 2 bad input, 69 a dependency (Temporal, PostgreSQL) is unreachable.
      When no worker polls the task queue, --follow says so within seconds and keeps waiting.
      On a terminal, --follow keeps an overview of the jobs (state, current step, time) under
      the log lines; on a pipe the output is the plain lines.

      --event and --branch run it as that event on that branch would run: \`when\` filters
      (events, branches) and SolsticeBranch see them, and a --event push pipeline cancels the
      still running push pipelines of its branch (cancel-superseded), as a forge push does. The
      ref recorded is refs/heads/<branch>; without --commit, the commit is the branch's tip.
      Without --branch, --commit <branch name> records that branch; HEAD records the branch you
      are on.
    `,
    examples: [
      ['This repository at HEAD, following the log', 'solstice enqueue --follow'],
      ['Another repository and commit', 'solstice enqueue --repo ../app --commit 3f2a9c1'],
      [
        'As a push to branch main would run (when filters, cancel-superseded)',
        'solstice enqueue --event push --branch main --follow',
      ],
      [
        'An Actions workflow_dispatch workflow with an input',
        'solstice enqueue --workflow .forgejo/workflows/deploy.yml --input target=staging',
      ],
    ],
  });

  repo = Option.String('--repo', '.', {
    description: 'Repository: a local path or a clone URL (default: the current directory)',
  });
  commit = Option.String('--commit', {
    description: 'Commit to run: sha, branch or tag (default: HEAD, or the tip of --branch)',
  });
  event = Option.String('--event', 'manual', {
    description: 'Run as this event: push, pull_request or manual (default: manual)',
  });
  branch = Option.String('--branch', {
    description: 'Run as on this branch (records ref refs/heads/<branch>)',
  });
  label = Option.String('--label', {
    description: 'Which machine image/provider runs the job (default: local)',
  });
  follow = Option.Boolean('-f,--follow', false, {
    description: "Print the live log and exit with the job's result",
  });
  direct = Option.Boolean('--direct', false, {
    description: 'Start the workflow directly instead of queueing the request through RabbitMQ',
  });
  workflow = Option.String('--workflow', {
    description: 'Run this Actions workflow file (e.g. .forgejo/workflows/deploy.yml) as workflow_dispatch',
  });
  input = Option.Array('--input', [], {
    description: 'A workflow_dispatch input, name=value (repeatable; with --workflow)',
  });

  async execute(): Promise<number> {
    if (!ENQUEUE_EVENTS.includes(this.event as EnqueueEvent))
      throw new InputError(`--event must be one of ${ENQUEUE_EVENTS.join(', ')}, got "${this.event}"`);
    if (this.input.length > 0 && !this.workflow)
      throw new InputError('--input needs --workflow: inputs belong to one workflow_dispatch workflow');
    const cfg = this.config();
    const { remoteMode } = await import('../remote-mode');
    if (remoteMode(cfg)) return this.remote(cfg);
    const [{ openStore }, { enqueue, parseInputs }] = await Promise.all([
      import('../context'),
      import('../enqueue'),
    ]);
    const store = await openStore(cfg);
    try {
      return await enqueue(
        cfg,
        store,
        {
          ...this.asked(parseInputs),
          direct: this.direct,
          explicitTimeout: this.flag('jobTimeoutMs') !== undefined,
        },
        this.context.stdout,
      );
    } finally {
      await store.close();
    }
  }

  /** What was asked for, as both modes take it. */
  private asked(parseInputs: (inputs: string[]) => Record<string, string>) {
    return {
      repo: this.repo,
      commit: this.commit,
      event: this.event as EnqueueEvent,
      ...(this.branch !== undefined ? { branch: this.branch } : {}),
      label: this.label,
      follow: this.follow,
      ...(this.workflow ? { workflow: this.workflow, inputs: parseInputs(this.input) } : {}),
    };
  }

  /** Through the API: the commit resolved here, the pipeline started and followed there. */
  private async remote(cfg: Config): Promise<number> {
    const [
      { requestFor, parseInputs },
      { remoteSession },
      { followPipeline },
      { exitCodeForState, stateLabel },
    ] = await Promise.all([
      import('../enqueue-request'),
      import('../remote'),
      import('../pipelines'),
      import('../output'),
    ]);
    const out = this.context.stdout;
    const r = await requestFor(this.asked(parseInputs), out);
    const remote = remoteSession(cfg);
    const started = await remote.api.request<{ pipelineId: string; workflowId: string }>(
      'POST',
      '/v1/pipelines',
      {
        repo: r.repo_url,
        commit: r.commit_sha,
        ref: r.ref,
        ...(r.event ? { event: r.event } : {}),
        ...(r.runs_on ? { label: r.runs_on } : {}),
        ...(r.workflow_path ? { workflow: r.workflow_path, inputs: r.inputs ?? {} } : {}),
      },
    );
    out.write(`pipeline ${started.pipelineId}\nworkflow ${started.workflowId}\n`);
    if (!this.follow) return 0;
    const p = await followPipeline(remote.source, started.pipelineId, out);
    out.write(`pipeline ${p.id} ${stateLabel(p.state)}${p.message ? `: ${p.message}` : ''}\n`);
    return exitCodeForState(p.state);
  }
}
