/**
 * Everything Solstice needs on one machine, started in dependency order: PostgreSQL (the
 * configured one, or embedded), migrations, Temporal (the configured one, or the dev server
 * with its Web UI), the runner download server, the log service, the job page and the
 * orchestrator worker;
 * then, when RabbitMQ is reachable, the bridge and (with a webhook secret, or the insecure
 * flag) the webhook ingress. Without RabbitMQ the rest runs and starts go direct.
 * Used by `solstice up` and `solstice ci-local`.
 */
import path from 'node:path';
import { AmqpConnection, connectIfReachable, installationTopology } from '../ingress/amqp';
import { readInstallationId } from '../storage/installation';
import { connectClient } from '../platform/temporal';
import { createBlobStore } from '../storage/create-blob-store';
import type { Config } from '../platform/config';
import { createDb, redactDatabaseUrl } from '../storage/db';
import { startEmbeddedPostgres } from './embedded-postgres';
import { JobStore } from '../storage/job-store';
import type { Logger } from '../platform/logger';
import { migrate } from '../storage/migrate';
import { isLoopbackHost, splitHostPort } from '../platform/net';
import { startDevServer } from './temporal-dev-server';
import { startOrchestratorWorker } from '../workers/orchestrator';
import { startBridge } from '../ingress/bridge';
import { artifactLimits } from '../runner-api/artifacts';
import { startJobPage } from '../web/job-page/server';
import { pipelineActions, webAccessFromConfig } from '../web/job-page/from-config';
import { apiServiceOptions } from '../api/service';
import { logServiceOptions, startLogService } from '../runner-api/server';
import { configuredWebhookOptions, startWebhookServer } from '../ingress/webhook-server';
import { createOutbox } from '../ingress/outbox';
import { runnerBundlePath } from '../runner-api/runner-bundle';
import { startRunnerServer } from '../runner-api/runner-download';

export interface Stack {
  cfg: Config;
  jobs: JobStore;
  urls: Record<string, string>;
  /** Resolves if a component (the worker) stops on its own, e.g. after a fatal error. */
  done: Promise<void>;
  stop(): Promise<void>;
}

export async function startStack(base: Config, log: Logger): Promise<Stack> {
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stops.reverse())
      await s().catch((err: unknown) => log.warn({ err }, 'stopping a component failed'));
  };
  try {
    const urls: Record<string, string> = {};
    let cfg = base;
    if (!cfg.databaseUrl) {
      const pg = await startEmbeddedPostgres({
        stateDir: cfg.stateDir,
        port: cfg.embeddedPgPort,
        log: (m) => log.info(m),
      });
      stops.push(pg.stop);
      cfg = { ...cfg, databaseUrl: pg.url };
      urls.postgres = `embedded, ${redactDatabaseUrl(pg.url)}`;
    } else {
      urls.postgres = redactDatabaseUrl(cfg.databaseUrl);
    }
    const applied = await migrate({ databaseUrl: cfg.databaseUrl as string });
    if (applied.applied.length > 0) log.info({ applied: applied.applied }, 'database migrated');

    const temporal = splitHostPort(cfg.temporalAddress);
    if (isLoopbackHost(temporal.host)) {
      const dev = await startDevServer({
        host: temporal.host,
        port: temporal.port,
        uiPort: cfg.temporalUiPort,
        dbFile: path.join(cfg.stateDir, 'temporal.sqlite'),
        logFile: path.join(cfg.stateDir, 'temporal.log'),
        namespace: cfg.temporalNamespace,
      });
      stops.push(dev.stop);
      urls.temporal = `${dev.address}${dev.owned ? ' (dev server)' : ' (already running)'}`;
      urls['temporal web ui'] = dev.uiUrl;
    } else {
      urls.temporal = cfg.temporalAddress;
    }

    const db = createDb(cfg);
    stops.push(() => db.$disconnect());

    const runnerServer = await startRunnerServer({
      addr: cfg.runnerServeAddr,
      bundlePath: runnerBundlePath(),
    });
    stops.push(runnerServer.close);
    urls['runner download'] = runnerServer.url;

    // Checked now, so a missing bucket or bad credentials stop `up`, not the first job's finalize.
    const blobs = createBlobStore(cfg);
    await blobs.check();
    stops.push(() => blobs.close());
    const jobs = new JobStore(db, blobs);
    urls['blob store'] = blobs.describe();

    const client = await connectClient(cfg);
    stops.push(client.close);
    const logService = await startLogService(cfg.grpcAddr, {
      jobs,
      temporal: client.client,
      log,
      blobs,
      artifactLimits: artifactLimits(cfg),
      // RabbitMQ is optional for `up` (see below): its absence does not make the log service unready.
      ...logServiceOptions(cfg, client.client, { checkAmqp: false }),
      shutdownGraceMs: cfg.shutdownGraceMs,
    });
    stops.push(logService.close);
    urls['log service (gRPC)'] = logService.address;

    // On loopback the developer running the stack is its only visitor, the operator; anywhere
    // else the pages ask the forges who may see what, as `solstice job-page` does. The API always
    // takes tokens.
    const pageOpen = isLoopbackHost(splitHostPort(cfg.jobPageAddr).host);
    const access = pageOpen ? undefined : webAccessFromConfig(cfg, jobs.db, log);
    const api = apiServiceOptions(cfg, jobs.db, access?.sources);
    stops.push(api.close);
    const jobPage = await startJobPage({
      addr: cfg.jobPageAddr,
      jobs,
      blobs,
      log,
      ...(access ? { access } : {}),
      actions: pipelineActions(client.client, cfg, jobs.db),
      trustProxy: cfg.trustProxy,
      api,
    });
    stops.push(jobPage.close);
    urls.api = `${cfg.publicUrl ?? jobPage.url}/api (docs/api.md)`;
    urls['job page'] = `${cfg.publicUrl ?? jobPage.url}/jobs/<job id>`;

    const worker = await startOrchestratorWorker(cfg, { jobs, blobs, log });
    stops.push(worker.shutdown);
    urls['orchestrator worker'] = `task queue ${cfg.taskQueue}`;

    const topology = await installationTopology(cfg, () => readInstallationId(jobs.db));
    const amqp = await connectIfReachable({ url: cfg.amqpUrl, log, name: 'solstice up', topology });
    if (!(amqp instanceof AmqpConnection)) {
      urls.rabbitmq = `${amqp.unreachable}: no bridge or webhooks; enqueue starts jobs directly`;
    } else {
      const conn = amqp;
      stops.push(() => conn.close());
      urls.rabbitmq = amqp.url;
      const bridge = startBridge(cfg, { amqp, temporal: client.client, log });
      stops.push(bridge.close);
      urls.bridge = `consuming ${topology.queue} (prefetch ${cfg.amqpPrefetch})`;
      const secrets = { forgejo: cfg.forgejoWebhookSecret, github: cfg.githubWebhookSecret };
      if (secrets.forgejo || secrets.github || cfg.webhookInsecure) {
        const publisher = amqp.publisher();
        stops.push(publisher.close);
        const outbox = createOutbox(db, publisher, log);
        stops.push(outbox.close);
        const webhooks = await startWebhookServer(
          configuredWebhookOptions(cfg, { publisher, outbox, log, brokerUp: () => conn.connected }),
        );
        stops.push(webhooks.close);
        urls.webhooks = `${webhooks.url}/webhooks/{forgejo,github}`;
      } else {
        urls.webhooks = 'off (set SOLSTICE_FORGEJO_WEBHOOK_SECRET or SOLSTICE_GITHUB_WEBHOOK_SECRET)';
      }
    }

    return { cfg, jobs, urls, done: worker.done, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
