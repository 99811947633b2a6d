/**
 * `solstice doctor` as a user runs it, against the machine's real PostgreSQL and RabbitMQ and
 * the run's Temporal dev server, and against closed ports.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../../platform/net';
import { runCli, type CliResult } from '../../support/cli';
import { createTestDatabase, type TestDatabase } from '../../support/database';
import { createTestVhost, type TestVhost } from '../../support/rabbitmq';

let database: TestDatabase;
let vhost: TestVhost;
let dir: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  database = await createTestDatabase();
  vhost = await createTestVhost();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-doctor-'));
  env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NO_COLOR: '1',
    DATABASE_URL: database.url,
    TEMPORAL_ADDRESS: process.env.SOLSTICE_TEST_TEMPORAL_ADDRESS,
    AMQP_URL: vhost.url,
    BLOB_FS_ROOT: path.join(dir, 'blobs'),
  };
});

afterAll(async () => {
  await database?.drop();
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
  for (const check of ['Temporal', 'PostgreSQL', 'RabbitMQ', 'blob store'])
    expect(line(r, check)).toMatch(/^ok {4}/);
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
    DATABASE_URL: `${database.url}?schema=unmigrated`,
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
