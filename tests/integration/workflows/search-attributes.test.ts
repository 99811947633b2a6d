/**
 * Registration of the Solstice search attributes on a namespace that lacks them, and starting
 * runs where they are not registered (they start without them instead of failing). Each test
 * uses a fresh namespace on the run's dev server (which otherwise has them from its flags).
 */
import { randomBytes } from 'node:crypto';
import { Connection, Client } from '@temporalio/client';
import { ensureSearchAttributes, SEARCH_ATTRIBUTE_NAMES } from '../../../ingress/search-attributes';
import { startJob } from '../../../ingress/job-start';
import { createLogger } from '../../../platform/logger';
import { SEARCH_ATTRIBUTES } from '../../../model/search-attributes';
import { registerTestNamespace } from '../../support/temporal-namespace';

let connection: Connection;
const log = createLogger('test');
log.level = 'silent';

beforeAll(async () => {
  const address = process.env.SOLSTICE_TEST_TEMPORAL_ADDRESS;
  if (!address) throw new Error('SOLSTICE_TEST_TEMPORAL_ADDRESS is unset: run through jest (global setup)');
  connection = await Connection.connect({ address });
});

afterAll(async () => {
  await connection?.close();
});

async function freshNamespace(): Promise<string> {
  const namespace = `sa-${randomBytes(4).toString('hex')}`;
  await registerTestNamespace(connection, namespace);
  return namespace;
}

async function customAttributes(namespace: string): Promise<string[]> {
  const r = await connection.operatorService.listSearchAttributes({ namespace });
  return Object.keys(r.customAttributes ?? {});
}

test('the worker registers the attributes a namespace lacks, and doing it again is a no-op', async () => {
  const namespace = await freshNamespace();
  expect(await customAttributes(namespace)).not.toContain('SolsticeRepo');
  expect(await ensureSearchAttributes(connection.operatorService, namespace, log)).toBe(true);
  expect(await customAttributes(namespace)).toEqual(expect.arrayContaining([...SEARCH_ATTRIBUTE_NAMES]));
  expect(await ensureSearchAttributes(connection.operatorService, namespace, log)).toBe(true);
});

test('a run starts without the attributes where the namespace does not know them', async () => {
  const namespace = await freshNamespace();
  const client = new Client({ connection, namespace });
  const cfg = { taskQueue: `no-worker-${namespace}`, jobTimeoutMs: 60_000, bootTimeoutMs: 60_000 };
  const started = await startJob(client, cfg, {
    source: 'manual',
    repoUrl: 'https://forge.example/acme/app.git',
    commitSha: 'a'.repeat(40),
  });
  const handle = client.workflow.getHandle(started.workflowId);
  try {
    const d = await handle.describe();
    expect(d.typedSearchAttributes.get(SEARCH_ATTRIBUTES.repo)).toBeUndefined();
    // The summary does not depend on the attributes.
    expect(await d.staticSummary()).toBe('acme/app@aaaaaaaaaaaa · job');
  } finally {
    await handle.terminate('test over');
  }
});
