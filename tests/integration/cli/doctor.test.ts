/**
 * `solstice doctor` as a user runs it, against the machine's real PostgreSQL and RabbitMQ, the
 * run's Temporal dev server and a harness's worker, log service and runner server, and against
 * closed ports and a task queue nobody polls; a real Gitea for the forge token.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../../platform/net';
import { runCli, type CliResult } from '../../support/cli';
import { startGitea } from '../../../devstack/gitea';
import { harnessWithWorkerForFile, type Harness } from '../../support/harness';
import { createTestVhost, type TestVhost } from '../../support/rabbitmq';

let h: Harness;
harnessWithWorkerForFile((harness) => (h = harness));

let vhost: TestVhost;
let dir: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  vhost = await createTestVhost();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-doctor-'));
  env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NO_COLOR: '1',
    DATABASE_URL: h.cfg.databaseUrl,
    TEMPORAL_ADDRESS: h.cfg.temporalAddress,
    SOLSTICE_TASK_QUEUE: h.cfg.taskQueue,
    SOLSTICE_RUNNER_URL: h.cfg.runnerUrl,
    ORCH_CONTACT_ADDR: h.cfg.contactAddr,
    AMQP_URL: vhost.url,
    BLOB_FS_ROOT: path.join(dir, 'blobs'),
  };
});

afterAll(async () => {
  await vhost?.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The line of one check, e.g. `FAIL  PostgreSQL  ...`. */
function line(r: CliResult, check: string): string {
  const found = r.stdout.split('\n').find((l) => l.slice(6).startsWith(`${check} `));
  if (!found) throw new Error(`no "${check}" line in:\n${r.stdout}\n${r.stderr}`);
  return found;
}

test('against the real services every dependency is ok and it exits 0', async () => {
  const r = await runCli(['doctor'], env);
  expect(r.code).toBe(0);
  for (const check of [
    'Temporal',
    'worker',
    'PostgreSQL',
    'RabbitMQ',
    'blob store',
    'log service',
    'runner URL',
  ])
    expect(line(r, check)).toMatch(/^ok {4}/);
  expect(line(r, 'worker')).toContain(`1 polling ${h.cfg.taskQueue}: `);
  expect(line(r, 'PostgreSQL')).toContain('none pending');
  // The id the migrations made once, which also names the broker queues.
  const id = /^ok {4}installation id ([0-9a-f]{12});/.exec(line(r, 'installation'))?.[1];
  expect(id).toBeDefined();
  expect(line(r, 'RabbitMQ')).toContain(`solstice.${id}.jobs.v1`);
  // This machine may or may not have QEMU/KVM; without an image map it is never a FAIL.
  expect(line(r, 'QEMU')).toMatch(/^(ok|warn) /);
  expect(line(r, 'images')).toMatch(/^skip .*SOLSTICE_IMAGE_MAP is unset/);
  // The probe object is gone again.
  expect(fs.readdirSync(path.join(dir, 'blobs', 'doctor'))).toEqual([]);
});

test('no worker polling the task queue, a runner URL and a log service that do not answer: each FAILs with its fix', async () => {
  const [runnerPort, grpcPort] = [await freePort(), await freePort()];
  const r = await runCli(['doctor'], {
    ...env,
    SOLSTICE_TASK_QUEUE: 'nobody-polls-this',
    SOLSTICE_RUNNER_URL: `http://127.0.0.1:${runnerPort}/runner.js`,
    ORCH_CONTACT_ADDR: `127.0.0.1:${grpcPort}`,
  });
  expect(r.code).toBe(69);
  expect(line(r, 'worker')).toMatch(
    /^FAIL {2}worker {6}no worker polls task queue "nobody-polls-this" on .*: pipelines would wait -> fix: start one with `solstice worker` .*SOLSTICE_TASK_QUEUE/,
  );
  expect(line(r, 'runner URL')).toMatch(
    new RegExp(
      `^FAIL  runner URL  http://127.0.0.1:${runnerPort}/runner.js is not reachable \\(ECONNREFUSED\\) -> fix: start the runner download server .*SOLSTICE_RUNNER_URL`,
    ),
  );
  expect(line(r, 'log service')).toMatch(
    new RegExp(
      `^FAIL  log service 127.0.0.1:${grpcPort} is not reachable .* -> fix: start the log service .*ORCH_CONTACT_ADDR`,
    ),
  );
  expect(line(r, 'Temporal')).toMatch(/^ok /);
});

test('AMQP_URL=none turns the broker off: a skip, not a failure', async () => {
  const r = await runCli(['doctor'], { ...env, AMQP_URL: 'none' });
  expect(r.code).toBe(0);
  expect(line(r, 'RabbitMQ')).toMatch(/^skip {2}RabbitMQ {4}off \(AMQP_URL=none\)/);
});

test('PostgreSQL on a closed port: FAIL with how to start it, exit 69', async () => {
  const port = await freePort();
  const r = await runCli(['doctor'], { ...env, DATABASE_URL: `postgresql://postgres@127.0.0.1:${port}/x` });
  expect(r.code).toBe(69);
  expect(line(r, 'PostgreSQL')).toMatch(
    new RegExp(
      `^FAIL  PostgreSQL  PostgreSQL is not reachable at 127.0.0.1:${port}/x.* -> fix: Start .*DATABASE_URL`,
    ),
  );
  expect(line(r, 'Temporal')).toMatch(/^ok /);
});

test('Temporal on a closed port: FAIL with how to start it, exit 69', async () => {
  const port = await freePort();
  const r = await runCli(['doctor'], { ...env, TEMPORAL_ADDRESS: `127.0.0.1:${port}` });
  expect(r.code).toBe(69);
  expect(line(r, 'Temporal')).toMatch(
    new RegExp(
      `^FAIL  Temporal    Temporal is not reachable at 127.0.0.1:${port}.* -> fix: .*TEMPORAL_ADDRESS`,
    ),
  );
  expect(line(r, 'PostgreSQL')).toMatch(/^ok /);
});

test('an unknown namespace, pending migrations and a closed RabbitMQ port each FAIL with their fix', async () => {
  const amqpPort = await freePort();
  const r = await runCli(['doctor', '--temporal-namespace', 'no-such-namespace'], {
    ...env,
    // A schema nothing was migrated into: every migration is pending.
    DATABASE_URL: `${h.cfg.databaseUrl}?schema=unmigrated`,
    AMQP_URL: `amqp://guest:guest@127.0.0.1:${amqpPort}/%2f`,
  });
  expect(r.code).toBe(69);
  expect(line(r, 'Temporal')).toMatch(
    /^FAIL .*namespace "no-such-namespace" does not exist.* -> fix: run `solstice temporal setup --temporal-namespace no-such-namespace`/,
  );
  expect(line(r, 'PostgreSQL')).toMatch(
    /^FAIL .*migration\(s\) pending .* -> fix: run `solstice db migrate`/,
  );
  expect(line(r, 'RabbitMQ')).toMatch(
    new RegExp(`^FAIL .*not reachable at .*:${amqpPort}.* -> fix: Start RabbitMQ`),
  );
});

test('an image map whose files are missing FAILs naming them; with the files present it is ok', async () => {
  const images = path.join(dir, 'images');
  fs.mkdirSync(images, { recursive: true });
  const map = path.join(dir, 'image-map.yaml');
  fs.writeFileSync(
    map,
    'images:\n  debian-12:\n    base: images/base.qcow2\n    kernel: images/vmlinuz\n    initrd: images/initrd\n',
  );
  const missing = await runCli(['doctor', '--image-map', map], env);
  expect(missing.code).toBe(69);
  expect(line(missing, 'images')).toMatch(
    new RegExp(
      `^FAIL .*debian-12: missing ${images}/base.qcow2, ${images}/vmlinuz, ${images}/initrd -> fix: `,
    ),
  );
  for (const f of ['base.qcow2', 'vmlinuz', 'initrd']) fs.writeFileSync(path.join(images, f), '');
  const present = await runCli(['doctor', '--image-map', map], env);
  expect(line(present, 'images')).toMatch(/^ok {4}images {6}1 image\(s\) present \(debian-12\)/);
});

test('a read-only Forgejo/Gitea token FAILs with the scope to grant; a token that may write statuses is ok', async () => {
  // Only this test needs a forge: it starts (and on a fresh machine builds) Gitea itself.
  const gitea = await startGitea();
  try {
    const user = await gitea.createUser(`doctor-${Date.now()}`);
    const readOnly = await gitea.createToken(user, ['read:repository', 'read:user']);
    const forgeEnv = { ...env, SOLSTICE_FORGEJO_API_URL: `${gitea.url}/api/v1` };
    const ro = await runCli(['doctor'], { ...forgeEnv, SOLSTICE_FORGEJO_TOKEN: readOnly });
    expect(ro.code).toBe(69);
    expect(line(ro, 'forge token')).toMatch(
      /^FAIL .*the token may not write commit statuses.* -> fix: make a token with the write:repository scope/,
    );
    // The token itself is never printed.
    expect(ro.stdout + ro.stderr).not.toContain(readOnly);

    const writer = await gitea.createToken(user, ['write:repository']);
    const ok = await runCli(['doctor'], { ...forgeEnv, SOLSTICE_FORGEJO_TOKEN: writer });
    expect(line(ok, 'forge token')).toMatch(/^ok {4}forge token .*may write commit statuses/);
    expect(ok.code).toBe(0);

    const revoked = await runCli(['doctor'], { ...forgeEnv, SOLSTICE_FORGEJO_TOKEN: 'f'.repeat(40) });
    expect(line(revoked, 'forge token')).toMatch(/^FAIL .*does not accept the token/);

    // Without an API URL doctor does not guess a forge to send the token to.
    const unknown = await runCli(['doctor'], { ...env, SOLSTICE_FORGEJO_TOKEN: writer });
    expect(line(unknown, 'forge token')).toMatch(/^skip .*SOLSTICE_FORGEJO_API_URL is unset/);
  } finally {
    await gitea.stop();
  }
});
