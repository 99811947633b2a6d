/**
 * The bootstrap builds only the tools a command names: `npm run ci:local` asks for the
 * Temporal CLI alone, so a newcomer's first run does not compile versitygw and Jaeger.
 * Run against a tools folder whose Temporal CLI is cached (an executable with the pinned
 * version's stamp, which is all the cache check reads; nothing here runs it) and a PATH
 * without Go: any attempt to build another tool would fail loudly. The test needs no built
 * tools, so it also runs in the repository's own CI job, which bootstraps nothing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../../..');
const BOOTSTRAP = path.join(ROOT, 'infra/bootstrap.sh');
const version = /^TEMPORAL_CLI_VERSION=(\S+)/m.exec(
  fs.readFileSync(path.join(ROOT, 'infra/versions.env'), 'utf8'),
)![1];

function toolsWithTemporal(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-bootstrap-'));
  fs.mkdirSync(path.join(dir, 'bin'));
  fs.writeFileSync(path.join(dir, 'bin', 'temporal'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'bin', '.temporal.version'), `${version}\n`);
  return dir;
}

/** bash and coreutils, but no `go`. */
function pathWithoutGo(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-nogo-'));
  for (const tool of ['bash', 'cat', 'mkdir', 'dirname', 'awk', 'env']) {
    const found = execFileSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
    fs.symlinkSync(found, path.join(dir, tool));
  }
  return dir;
}

function bootstrap(toolsDir: string, args: string[]) {
  return spawnSync('bash', [BOOTSTRAP, ...args], {
    encoding: 'utf8',
    env: { PATH: pathWithoutGo(), SOLSTICE_TOOLS_DIR: toolsDir, HOME: os.tmpdir() },
  });
}

test('npm run ci:local bootstraps the Temporal CLI and nothing else', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  expect(pkg.scripts['ci:local']).toMatch(/^bash infra\/bootstrap\.sh temporal && /);

  const tools = toolsWithTemporal();
  const r = bootstrap(tools, ['temporal']);
  expect(r.stderr).toContain(`temporal ${version}: cached`);
  expect(r.stderr).toContain('ready: temporal in');
  expect(r.stderr).not.toMatch(/versitygw|jaeger/);
  expect(r.status).toBe(0);
  expect(fs.readdirSync(path.join(tools, 'bin')).sort()).toEqual(['.temporal.version', 'temporal']);
});

test('without arguments the bootstrap wants every tool, and says what it cannot build', () => {
  const r = bootstrap(toolsWithTemporal(), []);
  expect(r.stderr).toContain('temporal');
  expect(r.stderr).toMatch(/Go is not installed, and it is needed to build versitygw/);
  expect(r.status).not.toBe(0);
});

test('the Temporal server and its SQL tool are built only when named (npm test), pinned and cached', () => {
  const serverVersion = /^TEMPORAL_SERVER_VERSION=(\S+)/m.exec(
    fs.readFileSync(path.join(ROOT, 'infra/versions.env'), 'utf8'),
  )![1];
  const script = fs.readFileSync(BOOTSTRAP, 'utf8');
  expect(/^default_tools=\((.*)\)$/m.exec(script)![1]).not.toMatch(/temporal-server|temporal-sql-tool/);
  // `npm test` runs tests on a cluster and asks for them; `ci:local` and the rest never do.
  const { scripts } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  // Through infra/test-tools.sh, which builds the guest image beside the Go tools.
  expect(scripts.test).toMatch(/^bash infra\/test-tools\.sh && /);
  expect(fs.readFileSync(path.join(ROOT, 'infra/test-tools.sh'), 'utf8')).toMatch(
    /^bash "\$here\/bootstrap\.sh" [a-z -]*\btemporal-server temporal-sql-tool$/m,
  );
  for (const [name, line] of Object.entries(scripts))
    if (name !== 'test') expect(line).not.toMatch(/temporal-server|temporal-sql-tool|test-tools/);

  const tools = toolsWithTemporal();
  const asked = bootstrap(tools, ['temporal-server']);
  expect(asked.stderr).toMatch(/Go is not installed, and it is needed to build temporal-server/);
  expect(asked.status).not.toBe(0);

  for (const name of ['temporal-server', 'temporal-sql-tool']) {
    fs.writeFileSync(path.join(tools, 'bin', name), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    fs.writeFileSync(path.join(tools, 'bin', `.${name}.version`), `${serverVersion}\n`);
  }
  const cached = bootstrap(tools, ['temporal-server', 'temporal-sql-tool']);
  expect(cached.stderr).toContain(`temporal-server ${serverVersion}: cached`);
  expect(cached.stderr).toContain(`temporal-sql-tool ${serverVersion}: cached`);
  expect(cached.status).toBe(0);
});

test('an unknown tool name is refused with the known ones', () => {
  const r = bootstrap(toolsWithTemporal(), ['minio']);
  expect(r.stderr).toContain(
    "unknown tool 'minio' (known: temporal versitygw jaeger gitea temporal-server temporal-sql-tool)",
  );
  expect(r.status).not.toBe(0);
});
