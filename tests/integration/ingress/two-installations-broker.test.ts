/**
 * Two installations (two databases, two task queues, two workers) on one RabbitMQ broker and
 * vhost, neither given SOLSTICE_AMQP_PREFIX: each publishes 50 job requests the way `solstice
 * enqueue` does, its bridge starts them, and its worker runs them (local provider, an `echo`
 * job, 8 machines at once). With one fixed name (the old `solstice.jobs.v1`) both bridges
 * consumed one shared queue, so each installation ran about half of the other's requests.
 * Each installation's database must end with exactly its own 50 pipelines and 50 jobs, all
 * `success`, none of the other's (each installation runs a repository of its own).
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { AmqpConnection, installationTopology } from '../../../ingress/amqp';
import { startBridge, type RunningBridge } from '../../../ingress/bridge';
import { pipelineIdsForRequest } from '../../../ingress/pipeline-start';
import { encodeJobRequest, JOB_REQUEST_V1, newJobRequest } from '../../../model/job-request';
import { createLogger } from '../../../platform/logger';
import { readInstallationId } from '../../../storage/installation';
import { jobRepo, type TestRepo } from '../../support/git-repo';
import { startHarness, type Harness } from '../../support/harness';
import { createTestVhost, type TestVhost } from '../../support/rabbitmq';
import { waitFor } from '../../support/wait';

const RUNS = 50;
const log = createLogger('test');
log.level = 'silent';

let vhost: TestVhost;
const installations: { h: Harness; repo: TestRepo; amqp: AmqpConnection; bridge: RunningBridge }[] = [];

beforeAll(async () => {
  vhost = await createTestVhost();
  for (let i = 0; i < 2; i++) {
    // Eight machines at once per installation keeps the 100 jobs to a couple of minutes.
    const h = await startHarness({ amqpUrl: vhost.url, labelLimits: 'local=8', hostMaxMachines: '8' });
    await h.startWorker();
    // What `solstice up`, `bridge` and `enqueue` do: no prefix given, so names from the id.
    const topology = await installationTopology(h.cfg, () => readInstallationId(h.db));
    const amqp = await AmqpConnection.connect({ url: vhost.url, log, name: `installation ${i}`, topology });
    const bridge = startBridge(h.cfg, { amqp, temporal: h.client, log });
    installations.push({ h, repo: jobRepo(`echo "installation ${i}"`), amqp, bridge });
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

/** Publishes `RUNS` requests on the installation's own names; returns their pipeline ids. */
async function publishRuns(amqp: AmqpConnection, repo: TestRepo): Promise<string[]> {
  const publisher = amqp.publisher();
  const ids: string[] = [];
  try {
    for (let n = 0; n < RUNS; n++) {
      // As `solstice enqueue` does: a delivery id of its own makes each request one run.
      const r = newJobRequest({
        source: 'manual',
        repoUrl: repo.dir,
        commitSha: repo.sha,
        ref: 'refs/heads/main',
        deliveryId: `enqueue-${randomUUID()}`,
      });
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
}

test('two installations on one broker and vhost each run exactly their own 50 requests to success', async () => {
  expect(installations[0].amqp.topology.queue).not.toBe(installations[1].amqp.topology.queue);
  const published = await Promise.all(installations.map(({ amqp, repo }) => publishRuns(amqp, repo)));
  for (const [i, { h }] of installations.entries()) {
    // Counted by state, so a timeout says how far the installation got.
    // On a connection of its own: 50 pipelines recorded at once keep the worker's pool (which
    // the harness shares) busy past its connect timeout, and the activities retry, but the
    // watch would fail for a wait that is not the test's subject.
    let states = '';
    const watch = new pg.Client({ connectionString: h.cfg.databaseUrl });
    await watch.connect();
    try {
      await waitFor(
        async () => {
          const { rows } = await watch.query<{ state: string; n: number }>(
            'SELECT state, count(*)::int AS n FROM pipelines GROUP BY state',
          );
          states = rows.map((r) => `${r.n} ${r.state}`).join(', ') || 'no pipelines';
          return rows.reduce((n, r) => n + (r.state === 'running' ? 0 : r.n), 0) >= RUNS;
        },
        240_000,
        `installation ${i}'s ${RUNS} pipelines finished`,
      ).catch((err: unknown) => {
        throw new Error(`${(err as Error).message} (pipelines: ${states})`);
      });
    } finally {
      await watch.end();
    }
  }
  // Anything of the other installation's would have arrived by now, as these 50 did.
  await new Promise((r) => setTimeout(r, 2000));
  for (const [i, { h, repo }] of installations.entries()) {
    const pipelines = await h.db.pipeline.findMany({
      select: { id: true, state: true, repoUrl: true },
      orderBy: { id: 'asc' },
    });
    expect(pipelines.map((p) => p.id)).toEqual(published[i]);
    expect(new Set(pipelines.map((p) => `${p.state} ${p.repoUrl}`))).toEqual(
      new Set([`success ${repo.dir}`]),
    );
    const jobs = await h.db.job.findMany({ select: { state: true, repoUrl: true } });
    expect(jobs).toHaveLength(RUNS);
    expect(new Set(jobs.map((j) => `${j.state} ${j.repoUrl}`))).toEqual(new Set([`success ${repo.dir}`]));
    expect(await h.leftovers()).toEqual({ processes: [], workspaces: [] });
  }
}, 420_000);
