/**
 * Prisma CLI configuration (Prisma 7 reads the datasource URL from here, not from schema.prisma).
 *
 * `prisma generate` runs in every build and never connects, so this file must load without a
 * DATABASE_URL: it then points at the embedded PostgreSQL that `solstice up` starts. It reads the
 * two variables directly instead of through `loadConfig`, so a malformed unrelated setting
 * (say GRPC_ADDR) cannot break code generation.
 */
import { defineConfig } from 'prisma/config';
import { EMBEDDED_PG_PORT_DEFAULT, embeddedDatabaseUrl } from './platform/config';

function embeddedPort(): number {
  const raw = process.env.SOLSTICE_EMBEDDED_PG_PORT;
  const port = raw ? Number(raw) : NaN;
  return Number.isInteger(port) && port > 0 ? port : EMBEDDED_PG_PORT_DEFAULT;
}

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL || embeddedDatabaseUrl(embeddedPort()) },
});
