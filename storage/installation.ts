/**
 * The installation's id: made once by the migration that created the `installation` table
 * (prisma/migrations/20261201120000_installation), read by every service that names machines
 * or broker queues, and shown by `solstice doctor`.
 */
import { SolsticeError } from '../platform/errors';
import type { Db } from './db';

export class InstallationUnknownError extends SolsticeError {}

export async function readInstallationId(db: Db): Promise<string> {
  const row = await db.installation.findFirst({ select: { id: true } }).catch((err: unknown) => {
    // An older schema: the table does not exist yet.
    throw new InstallationUnknownError(
      `the database has no installation id (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`,
      'run `solstice db migrate` (or start the services with --migrate-on-boot)',
      { cause: err },
    );
  });
  if (!row)
    throw new InstallationUnknownError(
      'the database has no installation id: its installation row was deleted',
      "restore the row of the `installation` table (its id names this installation's machines and queues); a new id leaves the old machines to be removed by hand",
    );
  return row.id;
}
