#!/usr/bin/env node
/**
 * Runs `prisma generate` without network access.
 *
 * Before generating, the Prisma CLI makes sure its native schema-engine binary is present and
 * downloads it when it is not; the download host is unreachable here, so generate fails even
 * though it never runs that engine. PRISMA_SCHEMA_ENGINE_BINARY only has to name an existing
 * file to skip the download, so we point it at a stub that explains itself if anything ever
 * does execute it. Migrations are applied by our own migrator (storage/migrate.ts), not by the
 * engine. An explicitly set PRISMA_SCHEMA_ENGINE_BINARY (a real engine) is left alone.
 *
 * Usage: node scripts/prisma-generate.mjs [extra prisma generate flags]
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);

const STUB = `#!/bin/sh
echo "solstice: Prisma's schema-engine is not installed (it cannot be downloaded offline)." >&2
echo "Apply migrations with \\\`solstice db migrate\\\` instead of \\\`prisma migrate\\\`." >&2
exit 1
`;

function ensureStub() {
  const stub = path.join(os.tmpdir(), `solstice-schema-engine-stub-${process.getuid?.() ?? 'user'}`);
  let current = null;
  try {
    current = fs.readFileSync(stub, 'utf8');
  } catch {
    // Missing: written below.
  }
  if (current !== STUB) {
    // Write-then-rename so parallel builds never see a half-written stub.
    const tmp = `${stub}.${process.pid}`;
    fs.writeFileSync(tmp, STUB, { mode: 0o755 });
    fs.renameSync(tmp, stub);
  }
  return stub;
}

const env = { ...process.env };
if (!env.PRISMA_SCHEMA_ENGINE_BINARY) env.PRISMA_SCHEMA_ENGINE_BINARY = ensureStub();
// The update check phones home and only slows an offline build down.
env.CHECKPOINT_DISABLE ??= '1';
env.PRISMA_HIDE_UPDATE_MESSAGE ??= '1';

const cli = require.resolve('prisma/build/index.js');
const result = spawnSync(process.execPath, [cli, 'generate', ...process.argv.slice(2)], {
  stdio: 'inherit',
  env,
});
if (result.error) {
  console.error(`prisma generate could not start: ${result.error.message}`);
  process.exit(1);
}
process.exit(result.status ?? 1);
