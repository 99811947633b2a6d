/**
 * Two installations (two databases, two workers) on one RabbitMQ broker and vhost, neither
 * given SOLSTICE_AMQP_PREFIX: each publishes 50 job requests the way `solstice enqueue` does
 * and its bridge consumes them. With the old fixed names both bridges consumed one shared
 * `solstice.jobs.v1`, so each installation ran about half of the other's requests.
 */
import { createLogger } from '../../../platform/logger';
import { AmqpConnection, installationTopology } from '../../../ingress/amqp';
import { startBridge, type RunningBridge } from '../../../ingress/bridge';
import { pipelineIdsForRequest } from '../../../ingress/pipeline-start';
import { encodeJobRequest, JOB_REQUEST_V1, newJobRequest } from '../../../model/job-request';
import { readInstallationId } from '../../../storage/installation';
import { jobRepo } from '../../support/git-repo';
import { startHarness, type Harness } from '../../support/harness';
import { createTestVhost, type TestVhost } from '../../support/rabbitmq';
import { waitFor } from '../../support/wait';

const log = createLogger('test');
log.level = 'silent';

let vhost: TestVhost;
const installations: { h: Harness; amqp: AmqpConnection; bridge: RunningBridge }[] = [];

beforeAll(async () => {
  vhost = await createTestVhost();
  for (let i = 0; i < 2; i++) {
    const h = await startHarness({ amqpUrl: vhost.url, hostMaxMachines: '6' });
    await h.startWorker();
    // What `solstice up` and `enqueue` do: no prefix given, so names from the installation id.
    const topology = await installationTopology(h.cfg, () => readInstallationId(h.db));
    const amqp = await AmqpConnection.connect({ url: vhost.url, log, name: `installation ${i}`, topology });
    installations.push({ h, amqp, bridge: startBridge(h.cfg, { amqp, temporal: h.client, log }) });
  }
}, 120_000);

afterAll(async () => {
  for (const { h, amqp, bridge } of installations) {
    await bridge.close();
    await amqp.close();
    await h.close();
  }
  await vhost?.drop();
});

test('two installations on one broker and vhost each run exactly their own 50 requests', async () => {
  const repo = jobRepo('echo hi');
  const published = await Promise.all(
    installations.map(async ({ amqp }) => {
      const publisher = amqp.publisher();
      const ids: string[] = [];
      try {
        for (let n = 0; n < 50; n++) {
          const r = newJobRequest({ source: 'manual', repoUrl: repo.dir, commitSha: repo.sha, ref: 'refs/heads/main' });
          await publisher.publish(encodeJobRequest(r), {
            headers: { schema_version: JOB_REQUEST_V1 },
            messageId: r.request_id,
          });
          ids.push(pipelineIdsForRequest(r).pipelineId);
        }
      } finally {
        await publisher.close();
      }
      return ids.sort();
    }),
  );
  expect(installations[0].amqp.topology.queue).not.toBe(installations[1].amqp.topology.queue);
  for (const [i, { h }] of installations.entries()) {
    await waitFor(
      async () => (await h.db.pipeline.count({ where: { state: { not: 'running' } } })) >= 50,
      480_000,
      `installation ${i} to finish 50 pipelines`,
    );
    // Anything of the other installation's would have arrived by now, as the 50 did.
    const rows = await h.db.pipeline.findMany({ select: { id: true, state: true } });
    expect(rows.map((p) => p.id).sort()).toEqual(published[i]);
    expect(rows.map((p) => p.state)).toEqual(rows.map(() => 'success'));
  }
}, 600_000);
