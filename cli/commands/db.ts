import { Command } from 'clipanion';
import { effectiveDatabaseUrl } from '../../platform/config';
import { ConnectedCommand } from '../settings-options';

export class DbMigrateCommand extends ConnectedCommand {
  static override paths = [['db', 'migrate']];
  static override usage = Command.Usage({
    description: 'Apply pending database migrations',
    details: `
      Applies prisma/migrations in order and records them in _prisma_migrations exactly as
      \`prisma migrate deploy\` does, so either tool can be used on the same database. Creates the
      database if it does not exist. Safe to run concurrently and repeatedly.
    `,
  });

  async execute(): Promise<number> {
    const cfg = this.config();
    const url = effectiveDatabaseUrl(cfg);
    const [{ checkDatabase }, { createDatabaseIfMissing, migrate }] = await Promise.all([
      import('../../storage/db'),
      import('../../storage/migrate'),
    ]);
    await createDatabaseIfMissing(url);
    await checkDatabase(url, { embedded: cfg.databaseUrl === undefined });
    const res = await migrate({ databaseUrl: url });
    if (res.applied.length === 0)
      this.context.stdout.write(`database is up to date (${res.alreadyApplied} migrations applied before)\n`);
    for (const name of res.applied) this.context.stdout.write(`applied ${name}\n`);
    return 0;
  }
}
