import { Command, Option } from 'clipanion';
import { ConnectedCommand } from '../settings-options';

export class LogsCommand extends ConnectedCommand {
  static override paths = [['logs']];
  static override usage = Command.Usage({
    description: "Print a job's log",
    details:
      'With --follow, keeps printing new lines until the job ends. stderr lines are yellow on a terminal.',
    examples: [['Follow a running job', 'solstice logs -f 3f2a9c']],
  });

  job = Option.String({ name: 'job' });
  follow = Option.Boolean('-f,--follow', false, { description: 'Keep printing lines until the job ends' });

  async execute(): Promise<number> {
    const [{ withStore }, { readLog }, { formatLogLine }] = await Promise.all([
      import('../context'),
      import('../../storage/log-follow'),
      import('../output'),
    ]);
    return withStore(this.config(), async (store) => {
      const job = await store.jobs.resolveJob(this.job);
      for await (const line of readLog(store.jobs, job.id, { follow: this.follow })) {
        this.context.stdout.write(`${formatLogLine(line)}\n`);
      }
      return 0;
    });
  }
}
