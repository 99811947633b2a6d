/**
 * The services one by one. Each command loads its service's modules when it runs (import()), so
 * that `--help` and every other command do not pay for the Temporal worker and OpenTelemetry SDKs.
 */
import * as v8 from 'node:v8';
import { Command } from 'clipanion';
import { AMQP_OFF, effectiveDatabaseUrl, type Config } from '../../platform/config';
import type { Logger } from '../../platform/logger';
import type { BlobStore } from '../../storage/blob-store';
import type { Store } from '../context';
import { ServiceCommand } from '../settings-options';

const serviceProcess = async () => (await import('../service-process')).ServiceProcess;

/**
 * The storage a service opens first: migrations when asked (SOLSTICE_MIGRATE_ON_BOOT), the blob
 * store checked (a missing bucket or refused credentials stop the service here, not at a job's
 * end), then the database.
 */
async function openStorage(
  cfg: Config,
  opts: { migrate: boolean; log?: Logger },
): Promise<{ blobs: BlobStore; store: Store }> {
  const [{ migrate }, { openStore }] = await Promise.all([
    import('../../storage/migrate'),
    import('../context'),
  ]);
  if (opts.migrate) await migrate({ databaseUrl: effectiveDatabaseUrl(cfg) });
  const store = await openStore(cfg);
  try {
    await store.blobs.check();
  } catch (err) {
    await store.close();
    throw err;
  }
  opts.log?.info({ blobs: store.blobs.describe() }, 'blob store');
  return { blobs: store.blobs, store };
}

export class UpCommand extends ServiceCommand {
  // `up` runs the bridge and the webhook ingress too: each of their settings is a flag here.
  static override settings = ServiceCommand.withSettings(
    'amqpUrl',
    'amqpPrefix',
    'amqpPrefetch',
    'webhookAddr',
    'webhookBodyLimit',
    'forgejoWebhookSecret',
    'githubWebhookSecret',
    'webhookInsecure',
    'webhookDedupeWindowMs',
    'forgejoToken',
    'forgejoApiUrl',
    'forgeStatusDeadlineMs',
    'githubAppId',
    'githubAppPrivateKey',
    'githubApiUrl',
  );
  static override paths = [['up']];
  static override usage = Command.Usage({
    description: 'Run all of Solstice on this machine',
    details: `
      Starts, in order: PostgreSQL (DATABASE_URL, or an embedded server in the state dir when unset),
      database migrations, Temporal (TEMPORAL_ADDRESS; on a loopback address the Temporal CLI dev server
      with its Web UI is started unless one already listens), the runner download server, the log service,
      the job page and the orchestrator worker, and, when RabbitMQ answers at AMQP_URL (by default
      amqp://guest:guest@127.0.0.1:5672/%2f, the local broker's guest account), the bridge and
      webhooks on this installation's queues (solstice.<installation id>.jobs.v1, or
      SOLSTICE_AMQP_PREFIX); AMQP_URL=none runs without a broker. With a webhook secret, the webhook
      ingress listens on SOLSTICE_WEBHOOK_ADDR (127.0.0.1:8090): POST /webhooks/forgejo (also
      /webhooks/gitea) and /webhooks/github. Prints their addresses, then runs until Ctrl-C.
    `,
  });

  async execute(): Promise<number> {
    const cfg = this.config();
    const [ServiceProcess, { startStack }, { formatStackUrls }] = await Promise.all([
      serviceProcess(),
      import('../../devstack/stack'),
      import('../output'),
    ]);
    const svc = new ServiceProcess('solstice-up', { cfg, name: 'solstice' });
    const stack = await startStack(cfg, svc.log);
    if (svc.telemetry?.metricsUrl) stack.urls.metrics = svc.telemetry.metricsUrl;
    if (cfg.otlpEndpoint) stack.urls['traces (OTLP)'] = cfg.otlpEndpoint;
    this.context.stdout.write('Solstice is up:\n');
    this.context.stdout.write(formatStackUrls(stack.urls));
    this.context.stdout.write('Enqueue a job with `solstice enqueue --follow`; stop with Ctrl-C.\n');
    return svc.serve([() => stack.stop()], stack.done);
  }
}

export class WorkerCommand extends ServiceCommand {
  static override paths = [['worker']];
  static override usage = Command.Usage({
    description: 'Run an orchestrator worker (JobWorkflow and its activities) for this host',
    details:
      'Polls the shared task queue and its host queue (<task queue>@<host id>). On SIGTERM it stops polling and gives in-flight activities SOLSTICE_SHUTDOWN_GRACE to finish (then hands them back to Temporal); a second SIGTERM exits at once.',
  });

  async execute(): Promise<number> {
    const cfg = this.config();
    const [ServiceProcess, { startOrchestratorWorker }] = await Promise.all([
      serviceProcess(),
      import('../../workers/orchestrator'),
    ]);
    const svc = new ServiceProcess('solstice-worker', { cfg });
    const { blobs, store } = await openStorage(cfg, { migrate: cfg.migrateOnBoot, log: svc.log });
    const worker = await startOrchestratorWorker(cfg, { jobs: store.jobs, blobs, log: svc.log });
    return svc.serve([() => worker.shutdown(), () => store.close()], worker.done);
  }
}

/**
 * The log service turns over its heap fast (statements of up to 512 KiB in, gzip out) and V8 by default lets
 * the heap grow by up to 4x between full collections. Growing by 50% at most, with the malloc
 * settings of infra/deploy/env/log-service.env, took the service's peak RSS over a 1 GiB log from
 * 229 to 154 MiB, for ~25% more of its CPU and ~10% less throughput (README "bench:logs").
 * Set here, not in the unit file, so every way of starting the service (systemd, `solstice
 * log-service` by hand, bench:logs) runs the same. A flag given to node itself wins
 * (`node --heap-growing-percent=0` restores V8's default).
 */
export const LOG_SERVICE_HEAP_GROWING_PERCENT = 50;

/** Whether node's own flags already set the heap growth, which then stands. */
export function heapGrowthGiven(nodeArgs: readonly string[]): boolean {
  return nodeArgs.some((a) => /^--heap[-_]growing[-_]percent\b/.test(a));
}

function tuneLogServiceHeap(): void {
  if (heapGrowthGiven(process.execArgv)) return;
  v8.setFlagsFromString(`--heap-growing-percent=${LOG_SERVICE_HEAP_GROWING_PERCENT}`);
}

export class LogServiceCommand extends ServiceCommand {
  static override paths = [['log-service']];
  static override usage = Command.Usage({
    description: 'Run the gRPC log service that runners stream to',
  });

  async execute(): Promise<number> {
    tuneLogServiceHeap();
    const cfg = this.config();
    const [ServiceProcess, { connectClient }, { artifactLimits }, { logServiceOptions, startLogService }] =
      await Promise.all([
        serviceProcess(),
        import('../../platform/temporal'),
        import('../../runner-api/artifacts'),
        import('../../runner-api/server'),
      ]);
    const svc = new ServiceProcess('solstice-log-service', { cfg });
    const { blobs, store } = await openStorage(cfg, { migrate: cfg.migrateOnBoot });
    const temporal = await connectClient(cfg);
    const server = await startLogService(cfg.grpcAddr, {
      jobs: store.jobs,
      temporal: temporal.client,
      log: svc.log,
      blobs,
      artifactLimits: artifactLimits(cfg),
      // RabbitMQ is checked when this process was given one to use (AMQP_URL=none: none).
      ...logServiceOptions(cfg, temporal.client, {
        checkAmqp: this.given('amqpUrl') && cfg.amqpUrl !== AMQP_OFF,
      }),
      shutdownGraceMs: cfg.shutdownGraceMs,
    });
    this.context.stdout.write(`log service listening on ${server.address}\n`);
    return svc.serve([() => server.close(), () => temporal.close(), () => store.close()]);
  }
}

export class JobPageCommand extends ServiceCommand {
  static override paths = [['job-page']];
  static override usage = Command.Usage({
    description:
      'Serve job pages over HTTP: status, steps, live log, artifacts (GET /jobs/<job id>), and the API (/api)',
    details:
      'Listens on SOLSTICE_JOB_PAGE_ADDR. Point SOLSTICE_PUBLIC_URL at the address people reach it by, so forge statuses link to it. The API (docs/api.md) is served under /api by the same server: /api/openapi.json describes it.',
  });

  async execute(): Promise<number> {
    const cfg = this.config();
    const [
      ServiceProcess,
      { startJobPage },
      { webAccessFromConfig, pipelineActions },
      { apiServiceOptions },
    ] = await Promise.all([
      serviceProcess(),
      import('../../web/job-page/server'),
      import('../../web/job-page/from-config'),
      import('../../api/service'),
    ]);
    const svc = new ServiceProcess('solstice-job-page');
    // The pages write only sessions: they leave migrations to the other services.
    const { blobs, store } = await openStorage(cfg, { migrate: false });
    const access = webAccessFromConfig(cfg, store.db, svc.log);
    // One Temporal client for the API and the pages' buttons, connected when first needed: the
    // pages and API reads work while Temporal is down.
    const api = apiServiceOptions(cfg, store.db, access.sources);
    const server = await startJobPage({
      addr: cfg.jobPageAddr,
      jobs: store.jobs,
      blobs,
      log: svc.log,
      access,
      actions: pipelineActions(api.temporal, cfg, store.db),
      trustProxy: cfg.trustProxy,
      api,
    });
    this.context.stdout.write(`job pages at ${server.url}/jobs/<job id>, the API at ${server.url}/api\n`);
    return svc.serve([() => server.close(), () => api.close(), () => store.close()]);
  }
}

export class RunnerServeCommand extends ServiceCommand {
  static override paths = [['runner-serve']];
  static override usage = Command.Usage({
    description: 'Serve the runner for machines to download (GET /runner.js)',
  });

  async execute(): Promise<number> {
    const cfg = this.config();
    const [ServiceProcess, { runnerBundlePath }, { startRunnerServer }] = await Promise.all([
      serviceProcess(),
      import('../../runner-api/runner-bundle'),
      import('../../runner-api/runner-download'),
    ]);
    const svc = new ServiceProcess('solstice-runner-serve');
    const server = await startRunnerServer({ addr: cfg.runnerServeAddr, bundlePath: runnerBundlePath() });
    this.context.stdout.write(`serving the runner at ${server.url}\n`);
    return svc.serve([() => server.close()]);
  }
}
