/**
 * SIGTERM drains: a worker stopped mid-job exits 0 and the next worker finishes the job; a
 * bridge stopped while messages flow settles what it holds, and the next bridge starts every
 * remaining run, so nothing is lost or started twice.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { Client } from '@temporalio/client';
import { AmqpConnection } from '../../../ingress/amqp';
import { encodeJobRequest, JOB_REQUEST_V1, newJobRequest } from '../../../model/job-request';
import { createLogger } from '../../../platform/logger';
import { freePort } from '../../../platform/net';
import { pipelineIdsForRequest } from '../../../ingress/pipeline-start';
import { connectClient } from '../../../platform/temporal';
import { CLI } from '../../support/cli';
import { jobRepo } from '../../support/git-repo';
import { startHarness, type Harness } from '../../support/harness';
import { createTestVhost, type TestVhost, TOPOLOGY } from '../../support/rabbitmq';
import { gatePath, waitFor } from '../../support/wait';
import { forgejoPush, randomSha } from '../../support/webhooks';

const log = createLogger('test');
log.level = 'silent';

/** The exit code, or 128 + signal number when a signal ended the process. */
function exitCode(child: ChildProcess): Promise<number> {
  const code = () => child.exitCode ?? (child.signalCode ? 128 : -1);
  return new Promise((resolve) =>
    child.exitCode !== null || child.signalCode !== null
      ? resolve(code())
      : child.once('exit', () => resolve(code())),
  );
}

/** Resolves with the exit code, or rejects if the process has not exited after `ms`. */
function exitWithin(child: ChildProcess, ms: number, what: string): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    exitCode(child).finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} still running ${ms} ms after SIGTERM`)), ms);
    }),
  ]);
}

describe('worker', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  test('SIGTERM mid-job: the worker exits 0 within its grace period and the next worker completes the job', async () => {
    const gate = gatePath();
    const repo = jobRepo(`echo before\nwhile [ ! -e ${gate} ]; do sleep 0.1; done\necho after`);
    const graceS = 5;
    const first = h.spawnWorker({ SOLSTICE_SHUTDOWN_GRACE: `${graceS}s` });
    const { jobId, workflowId } = await h.enqueue(repo.dir, repo.sha);
    await waitFor(
      async () => (await h.jobs.logLinesAfter(jobId, 0, 1000)).some((l) => l.text === 'before'),
      90_000,
      'job start',
    );

    first.kill('SIGTERM');
    // Bounded by the grace period plus the time the SDK may take to hand activities back;
    // the generous margin is for this shared machine, not a speed claim.
    expect(await exitWithin(first, (graceS + 10 + 30) * 1000, 'the worker')).toBe(0);

    fs.writeFileSync(gate, '');
    const second = h.spawnWorker();
    try {
      const job = await h.result(workflowId, jobId);
      expect(job.state).toBe('success');
      expect((await h.jobs.logLinesAfter(jobId, 0, 1000)).map((l) => l.text)).toContain('after');
      await waitFor(async () => (await h.leftovers()).workspaces.length === 0, 30_000, 'cleanup');
    } finally {
      second.kill('SIGTERM');
      await exitCode(second);
    }
  });
});

describe('bridge', () => {
  let vhost: TestVhost;
  let temporal: { client: Client; close(): Promise<void> };
  const temporalAddress = process.env.SOLSTICE_TEST_TEMPORAL_ADDRESS as string;

  beforeAll(async () => {
    vhost = await createTestVhost();
    temporal = await connectClient({ temporalAddress, temporalNamespace: 'default' });
  });
  afterAll(async () => {
    await temporal?.close();
    await vhost?.drop();
  });

  function spawnBridge(taskQueue: string): ChildProcess {
    return spawn(process.execPath, [CLI, 'bridge'], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        LOG_LEVEL: 'warn',
        AMQP_URL: vhost.url,
        SOLSTICE_AMQP_PREFIX: TOPOLOGY.prefix,
        AMQP_PREFETCH: '16',
        TEMPORAL_ADDRESS: temporalAddress,
        SOLSTICE_TASK_QUEUE: taskQueue,
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }

  /** Workflow ids of every run on the task queue (no worker polls it, so runs stay open). */
  async function runsOn(taskQueue: string): Promise<string[]> {
    const ids: string[] = [];
    for await (const wf of temporal.client.workflow.list({ query: `TaskQueue = "${taskQueue}"` }))
      ids.push(wf.workflowId);
    return ids.sort();
  }

  test('SIGTERM while messages flow: the bridge exits 0 and, after a new bridge starts, every run exists once', async () => {
    const taskQueue = `drain-test-${randomUUID().slice(0, 8)}`;
    const requests = Array.from({ length: 300 }, (_, i) =>
      newJobRequest({
        source: 'forgejo',
        repoUrl: 'http://forgejo.example/solstice/app.git',
        commitSha: randomSha(),
        ref: 'refs/heads/main',
        deliveryId: `drain-${i}-${randomUUID()}`,
      }),
    );
    const expected = requests.map((r) => pipelineIdsForRequest(r).workflowId).sort();
    const producer = await AmqpConnection.connect({
      topology: TOPOLOGY,
      url: vhost.url,
      log,
      name: 'producer',
    });
    const publisher = producer.publisher();
    // Every request is queued before the first bridge starts, and it is stopped once it took 40
    // off the queue. The queue's depth says so at once; the run list (visibility) lags by
    // seconds on a busy machine, long enough for the bridge to have started every run.
    for (const r of requests)
      await publisher.publish(encodeJobRequest(r), { headers: { schema_version: JOB_REQUEST_V1 } });
    const first = spawnBridge(taskQueue);
    try {
      await waitFor(
        async () => (await vhost.depth(TOPOLOGY.queue)) <= requests.length - 40,
        90_000,
        '40 requests taken',
      );
      first.kill('SIGTERM');
      expect(await exitWithin(first, 60_000, 'the bridge')).toBe(0);
      const afterFirst = (await runsOn(taskQueue)).length;
      // The test is only worth something if the first bridge left work for the second.
      expect(afterFirst).toBeLessThan(requests.length);

      const second = spawnBridge(taskQueue);
      try {
        await waitFor(
          async () => (await runsOn(taskQueue)).length >= expected.length,
          120_000,
          `${expected.length} runs`,
        );
        await waitFor(async () => (await vhost.depth(TOPOLOGY.queue)) === 0, 30_000, 'an empty queue');
        expect(await runsOn(taskQueue)).toEqual(expected);
        expect(await vhost.depth(TOPOLOGY.dlq)).toBe(0);
      } finally {
        second.kill('SIGTERM');
        expect(await exitCode(second)).toBe(0);
      }
    } finally {
      first.kill('SIGKILL');
      await publisher.close();
      await producer.close();
    }
  });
});

describe('webhook serve', () => {
  let vhost: TestVhost;
  beforeAll(async () => {
    vhost = await createTestVhost();
  });
  afterAll(async () => {
    await vhost?.drop();
  });

  test('SIGTERM during a request: the request is answered and queued, new connections are refused, exit 0', async () => {
    const secret = 'drain-secret';
    const port = await freePort();
    const server = spawn(process.execPath, [CLI, 'webhook', 'serve'], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        LOG_LEVEL: 'warn',
        AMQP_URL: vhost.url,
        SOLSTICE_AMQP_PREFIX: TOPOLOGY.prefix,
        SOLSTICE_WEBHOOK_ADDR: `127.0.0.1:${port}`,
        SOLSTICE_FORGEJO_WEBHOOK_SECRET: secret,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.stdout?.on('data', (d: Buffer) => {
          if (d.toString().includes('listening')) resolve();
        });
        server.once('exit', (code) => reject(new Error(`webhook serve exited with ${code}`)));
      });
      const delivery = forgejoPush(secret);
      const head =
        `POST ${delivery.path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: ${delivery.body.length}\r\n` +
        Object.entries(delivery.headers)
          .map(([k, v]) => `${k}: ${v}\r\n`)
          .join('') +
        'connection: close\r\n\r\n';
      const socket = net.connect(port, '127.0.0.1');
      let answer = '';
      socket.on('data', (d: Buffer) => (answer += d.toString()));
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      // Half the body now: the request is in flight when the signal arrives.
      const half = Math.floor(delivery.body.length / 2);
      socket.write(Buffer.concat([Buffer.from(head), delivery.body.subarray(0, half)]));
      await new Promise((r) => setTimeout(r, 300));
      server.kill('SIGTERM');
      await waitFor(
        () =>
          new Promise<boolean>((resolve) => {
            const probe = net.connect(port, '127.0.0.1');
            probe.once('connect', () => {
              probe.destroy();
              resolve(false);
            });
            probe.once('error', () => resolve(true));
          }),
        30_000,
        'the server to stop accepting connections',
      );
      socket.write(delivery.body.subarray(half));
      await closed;
      expect(answer).toMatch(/^HTTP\/1.1 202 /);
      expect(await exitWithin(server, 60_000, 'webhook serve')).toBe(0);
      expect(await vhost.depth(TOPOLOGY.queue)).toBe(1);
    } finally {
      server.kill('SIGKILL');
    }
  });
});
