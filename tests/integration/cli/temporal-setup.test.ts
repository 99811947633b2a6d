/**
 * `solstice temporal setup` and what `solstice doctor` says about a namespace, against the run's
 * dev server, on namespaces made per test: a fresh namespace (as on a new cluster) goes FAIL →
 * setup → ok, a second setup changes nothing, a namespace with only some attributes gets the
 * rest, and one with an attribute of the wrong type is refused with how to fix it.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { SEARCH_ATTRIBUTE_NAMES } from '../../../ingress/search-attributes';
import { runCli, type CliResult } from '../../support/cli';
import { registerTestNamespace } from '../../support/temporal-namespace';
import { waitFor } from '../../support/wait';

const KEYWORD = 2;
const TEXT = 1;

let connection: Connection;
let dir: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  const address = process.env.SOLSTICE_TEST_TEMPORAL_ADDRESS;
  if (!address) throw new Error('SOLSTICE_TEST_TEMPORAL_ADDRESS is unset: run through jest (global setup)');
  connection = await Connection.connect({ address });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-temporal-setup-'));
  env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NO_COLOR: '1',
    TEMPORAL_ADDRESS: address,
    // Only the Temporal lines matter here; the rest answer fast without their services.
    AMQP_URL: 'none',
    DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/none',
    BLOB_FS_ROOT: path.join(dir, 'blobs'),
    SOLSTICE_TASK_QUEUE: `setup-${randomBytes(4).toString('hex')}`,
  };
});

afterAll(async () => {
  await connection?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const freshName = () => `setup-${randomBytes(4).toString('hex')}`;

function line(r: CliResult, check: string): string {
  const found = r.stdout.split('\n').find((l) => l.slice(6).startsWith(`${check} `));
  if (!found) throw new Error(`no "${check}" line in:\n${r.stdout}\n${r.stderr}`);
  return found;
}

const doctor = (namespace: string) => runCli(['doctor'], { ...env, TEMPORAL_NAMESPACE: namespace });
const setup = (namespace: string, ...args: string[]) =>
  runCli(['temporal', 'setup', '--temporal-namespace', namespace, ...args], env);

async function attributes(namespace: string): Promise<Record<string, number>> {
  const r = await connection.operatorService.listSearchAttributes({ namespace });
  return Object.fromEntries(Object.entries(r.customAttributes ?? {}).map(([k, v]) => [k, Number(v)]));
}

/** A namespace as an operator might have left it: made by hand, with the given attributes only. */
async function handMadeNamespace(attrs: Record<string, number>): Promise<string> {
  const namespace = freshName();
  await registerTestNamespace(connection, namespace);
  if (Object.keys(attrs).length > 0)
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: attrs });
  return namespace;
}

test('a namespace the cluster lacks: doctor FAILs with the fix, setup creates it, then doctor is ok', async () => {
  const namespace = freshName();
  const before = await doctor(namespace);
  expect(before.code).toBe(69);
  expect(line(before, 'Temporal')).toMatch(
    new RegExp(
      `^FAIL {2}Temporal {4}namespace "${namespace}" does not exist .* -> fix: run \`solstice temporal setup --temporal-namespace ${namespace}\``,
    ),
  );
  expect(line(before, 'search attrs')).toMatch(/^skip /);

  const first = await setup(namespace, '--temporal-retention', '2d');
  expect(first.stderr).toBe('');
  expect(first.code).toBe(0);
  expect(first.stdout).toContain(
    `namespace "${namespace}" on ${env.TEMPORAL_ADDRESS}: created (retention 2d)`,
  );
  expect(first.stdout).toContain(`search attributes: registered ${SEARCH_ATTRIBUTE_NAMES.join(', ')}`);
  const ns = await connection.workflowService.describeNamespace({ namespace });
  expect(Number(ns.config?.workflowExecutionRetentionTtl?.seconds)).toBe(2 * 24 * 3600);
  const attrs = await attributes(namespace);
  for (const name of SEARCH_ATTRIBUTE_NAMES) expect(attrs[name]).toBe(KEYWORD);

  const after = await doctor(namespace);
  expect(line(after, 'Temporal')).toMatch(new RegExp(`^ok {4}Temporal {4}.*namespace "${namespace}"`));
  expect(line(after, 'search attrs')).toMatch(/^ok {4}search attrs all 6 registered as Keyword/);
  // Nothing polls this test's own task queue: pipelines would wait, a failure.
  expect(line(after, 'worker')).toMatch(/^FAIL {2}worker {6}no worker polls task queue "setup-/);

  const again = await setup(namespace);
  expect(again.code).toBe(0);
  expect(again.stdout).toContain(`namespace "${namespace}" on ${env.TEMPORAL_ADDRESS}: exists`);
  expect(again.stdout).toContain('search attributes: all registered already');
});

test('a namespace with some of the attributes: doctor names the missing ones, setup adds just those', async () => {
  const namespace = await handMadeNamespace({ SolsticeRepo: KEYWORD });
  const before = await doctor(namespace);
  expect(before.code).toBe(69);
  expect(line(before, 'Temporal')).toMatch(/^ok /);
  const missing = SEARCH_ATTRIBUTE_NAMES.filter((n) => n !== 'SolsticeRepo');
  expect(line(before, 'search attrs')).toContain(`lacks ${missing.join(', ')} (5 of 6)`);
  expect(line(before, 'search attrs')).toContain('-> fix: run `solstice temporal setup --temporal-namespace');

  const r = await setup(namespace);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain(': exists');
  expect(r.stdout).toContain(`search attributes: registered ${missing.join(', ')}`);
  expect(line(await doctor(namespace), 'search attrs')).toMatch(/^ok /);
});

test('an attribute registered with another type: doctor and setup say how to fix it', async () => {
  const namespace = await handMadeNamespace({ SolsticeRepo: TEXT });
  const d = await doctor(namespace);
  expect(line(d, 'search attrs')).toMatch(/^FAIL .*SolsticeRepo as TEXT; Solstice needs KEYWORD/);
  const r = await setup(namespace);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain('SolsticeRepo as TEXT');
  expect(r.stderr).toContain(
    `temporal operator search-attribute remove --namespace ${namespace} --name SolsticeRepo`,
  );
  // Nothing else was registered behind the error's back.
  expect(Object.keys(await attributes(namespace)).filter((n) => n.startsWith('Solstice'))).toEqual([
    'SolsticeRepo',
  ]);
});

test('doctor lists who polls the task queue, and warns when their Solstice versions differ', async () => {
  const namespace = freshName();
  expect((await setup(namespace)).code).toBe(0);
  const version = (
    JSON.parse(fs.readFileSync(path.join(__dirname, '../../../package.json'), 'utf8')) as {
      version: string;
    }
  ).version;
  const taskQueue = env.SOLSTICE_TASK_QUEUE!;
  /** A worker polling the queue under a given identity (activities only: no workflow bundle to build). */
  const poll = async (identity: string) => {
    const native = await NativeConnection.connect({ address: env.TEMPORAL_ADDRESS! });
    const worker = await Worker.create({
      connection: native,
      namespace,
      taskQueue,
      identity,
      activities: { noop: async () => undefined },
    });
    const running = worker.run();
    return async () => {
      worker.shutdown();
      await running;
      await native.close();
    };
  };
  const stopCurrent = await poll(`4242@vmhost-a solstice/${version}`);
  try {
    await waitFor(
      async () => line(await doctor(namespace), 'worker').startsWith('ok '),
      30_000,
      'the poller to show',
    );
    expect(line(await doctor(namespace), 'worker')).toMatch(
      new RegExp(
        `^ok {4}worker {6}1 polling ${taskQueue}: 4242@vmhost-a solstice/${version.replace(/\./g, '\\.')}$`,
      ),
    );
    const stopOld = await poll('4343@vmhost-b solstice/0.0.0-old');
    try {
      await waitFor(
        async () => line(await doctor(namespace), 'worker').includes('0.0.0-old'),
        30_000,
        'the second poller to show',
      );
      const w = line(await doctor(namespace), 'worker');
      expect(w).toMatch(/^warn {2}worker {6}2 polling /);
      expect(w).toContain(
        `versions 0.0.0-old differ from this one (${version}) -> fix: finish the rolling upgrade`,
      );
    } finally {
      await stopOld();
    }
  } finally {
    await stopCurrent();
  }
});
