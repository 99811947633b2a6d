import { Command, Option } from 'clipanion';
import { BlobCommand } from '../settings-options';

export class LogsCommand extends BlobCommand {
  static override paths = [['logs']];
  static override usage = Command.Usage({
    description: "Print a job's log, or the logs of a pipeline's jobs",
    details: `
      Give a job (id, unique id prefix, or <pipeline>/<job name>), or a pipeline (id, prefix, or
      <repo>#<number> as \`solstice pipelines\` shows it, e.g. app#12) and optionally the name of
      one of its jobs (\`solstice logs app#12 test[node=20]\`). A pipeline's jobs print one
      after another, each line prefixed with its job's name; with --follow, the lines of jobs that
      run at once interleave as they arrive, and a table of the jobs' outcomes ends the output.
      On a terminal, an overview of the jobs (state, current step, time) stays under the lines.

      --failed keeps only jobs that failed, errored or were cancelled; --step only the lines of
      one step (its number or name). With --exit-status the command exits with the job's (or
      pipeline's) result once it ended: 0 success, 1 failure, 3 error, 4 cancelled.
      stderr lines are yellow on a terminal.
    `,
    examples: [
      ['Follow a running job', 'solstice logs -f 3f2a9c'],
      ['Every failed job of a pipeline', 'solstice logs 7b1e04 --failed'],
      [
        'One step of a matrix job, failing when the job failed',
        'solstice logs 7b1e04/test[node=20] --step build --exit-status',
      ],
    ],
  });

  target = Option.String({ name: 'job|pipeline' });
  jobName = Option.String({ name: 'job name', required: false });
  follow = Option.Boolean('-f,--follow', false, { description: 'Keep printing lines until the job ends' });
  failed = Option.Boolean('--failed', false, {
    description: 'Only jobs that failed, errored or were cancelled',
  });
  step = Option.String('--step', { description: 'Only the lines of this step (number or name)' });
  exitStatus = Option.Boolean('--exit-status', false, {
    description: 'Exit with the result: 0 success, 1 failure, 3 error, 4 cancelled',
  });

  async execute(): Promise<number> {
    const { showLogs } = await import('../logs');
    return showLogs(this.config(), this.context.stdout, {
      target: this.target,
      jobName: this.jobName,
      follow: this.follow,
      failed: this.failed,
      step: this.step,
      exitStatus: this.exitStatus,
    });
  }
}
