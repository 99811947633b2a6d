/**
 * Two installations (two databases, two task queues) on one RabbitMQ broker and vhost, neither
 * given SOLSTICE_AMQP_PREFIX: each publishes 50 job requests the way `solstice enqueue` does,
 * and each installation's bridge starts runs in its own Temporal task queue. With the old fixed
 * names both bridges consumed one shared `solstice.jobs.v1`, so each installation started about
 * half of the other's requests. Runs are started on task queues no worker polls (as in
 * bridge.test.ts), so Temporal's visibility counts exactly which runs each installation started.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { AmqpConnection, installationTopology } from '../../../ingress/amqp';
import { startBridge, type RunningBridge } from '../../../ingress/bridge';
import { pipelineIdsForRequest } from '../../../ingress/pipeline-start';
import { encodeJobRequest, JOB_REQUEST_V1, newJobRequest } from '../../../model/job-request';
import { loadConfig } from '../../../platform/config';
import { createLogger } from '../../../platform/logger';
import { connectClient } from '../../../platform/temporal';
import { createDb } from '../../../storage/db';
import { readInstallationId } from '../../../storage/installation';
import { createTestDatabase, type TestDatabase } from '../../support/database';
import { createTestVhost, type TestVhost } from '../../support/rabbitmq';
import { waitFor } from '../../support/wait';

const log = createLogger('test');
log.level = 'silent';

let vhost: TestVhost;
let temporal: { client: Client; close(): Promise<void> };
const installations: {
  database: TestDatabase;
  taskQueue: string;
  amqp: AmqpConnection;
  bridge: RunningBridge;
}[] = [];

beforeAll(async () => {
  vhost = await createTestVhost();
  const temporalAddress = process.env.SOLSTICE_TEST_TEMPORAL_ADDRESS;
  if (!temporalAddress) throw new Error('SOLSTICE_TEST_TEMPORAL_ADDRESS is unset: run through jest');
  temporal = await connectClient({ temporalAddress, temporalNamespace: 'default' });
  for (let i = 0; i < 2; i++) {
    const database = await createTestDatabase();
    const cfg = loadConfig(
      {
        databaseUrl: database.url,
        temporalAddress,
        taskQueue: `two-brokers-${randomUUID().slice(0, 8)}`,
        amqpUrl: vhost.url,
      },
      {},
    );
    // What `solstice up`, `bridge` and `enqueue` do: no prefix given, so names from the id.
    const db = createDb(cfg);
    const topology = await installationTopology(cfg, () => readInstallationId(db)).finally(() =>
      db.$disconnect(),
    );
    const amqp = await AmqpConnection.connect({ url: vhost.url, log, name: `installation ${i}`, topology });
    const bridge = startBridge(cfg, { amqp, temporal: temporal.client, log });
    installations.push({ database, taskQueue: cfg.taskQueue, amqp, bridge });
  }
}, 120_000);

afterAll(async () => {
  for (const { database, amqp, bridge } of installations) {
    await bridge.close();
    await amqp.close();
    await database.drop();
  }
  await temporal?.close();
  await vhost?.drop();
});

async function runsOn(taskQueue: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const wf of temporal.client.workflow.list({ query: `TaskQueue = "${taskQueue}"` }))
    ids.push(wf.workflowId);
  return ids.sort();
}

test('two installations on one broker and vhost each start exactly their own 50 requests', async () => {
  expect(installations[0].amqp.topology.queue).not.toBe(installations[1].amqp.topology.queue);
  const published = await Promise.all(
    installations.map(async ({ amqp }) => {
      const publisher = amqp.publisher();
      const ids: string[] = [];
      try {
        for (let n = 0; n < 50; n++) {
          const r = newJobRequest({
            source: 'manual',
            repoUrl: 'http://forgejo.example/solstice/app.git',
            commitSha: randomUUID().replaceAll('-', '').padEnd(40, '0'),
            ref: 'refs/heads/main',
          });
          await publisher.publish(encodeJobRequest(r), {
            headers: { schema_version: JOB_REQUEST_V1 },
            messageId: r.request_id,
          });
          ids.push(pipelineIdsForRequest(r).workflowId);
        }
      } finally {
        await publisher.close();
      }
      return ids.sort();
    }),
  );
  for (const [i, { taskQueue }] of installations.entries()) {
    await waitFor(async () => (await runsOn(taskQueue)).length >= 50, 180_000, `installation ${i}'s 50 runs`);
  }
  // Anything of the other installation's would have arrived by now, as these 50 did.
  await new Promise((r) => setTimeout(r, 2000));
  for (const [i, { taskQueue }] of installations.entries())
    expect(await runsOn(taskQueue)).toEqual(published[i]);
}, 300_000);
