import { Command } from 'clipanion';
import { effectiveDatabaseUrl } from '../../common/config';
import { createBlobStore } from '../../common/create-blob-store';
import { createLogger } from '../../common/logger';
import { migrate } from '../../common/migrate';
import { initTelemetry } from '../../common/telemetry';
import { connectClient } from '../../common/temporal';
import { startLogService } from '../../services/log-service/server';
import { runnerBundlePath } from '../../services/runner-bundle';
import { startRunnerServer } from '../../services/runner-server';
import { startStack } from '../../services/stack';
import { startOrchestratorWorker } from '../../workers/orchestrator';
import { openStore } from '../context';
import { ServiceCommand } from '../settings-options';

/** Runs until SIGINT/SIGTERM, then stops what it started, in reverse order. */
async function serveUntilSignal(stop: () => Promise<void>, done?: Promise<void>): Promise<number> {
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  const failed = done ? done.then(() => 'stopped' as const) : new Promise<never>(() => undefined);
  await Promise.race([signalled, failed]);
  await stop();
  return 0;
}

export class UpCommand extends ServiceCommand {
  static override paths = [['up']];
  static override usage = Command.Usage({
    description: 'Run all of Solstice on this machine',
    details: `
      Starts, in order: PostgreSQL (DATABASE_URL, or an embedded server in the state dir when unset),
      database migrations, Temporal (TEMPORAL_ADDRESS; on a loopback address the Temporal CLI dev server
      with its Web UI is started unless one already listens), the runner download server, the log service
      and the orchestrator worker. Prints their addresses, then runs until Ctrl-C.
    `,
  });

  async execute(): Promise<number> {
    const cfg = this.config();
    const log = createLogger('solstice-up');
    const telemetry = initTelemetry('solstice', cfg);
    const stack = await startStack(cfg, log);
    if (telemetry.metricsUrl) stack.urls.metrics = telemetry.metricsUrl;
    if (cfg.otlpEndpoint) stack.urls['traces (OTLP)'] = cfg.otlpEndpoint;
    this.context.stdout.write('Solstice is up:\n');
    for (const [k, v] of Object.entries(stack.urls)) this.context.stdout.write(`  ${k.padEnd(22)} ${v}\n`);
    this.context.stdout.write('Enqueue a job with `solstice enqueue --follow`; stop with Ctrl-C.\n');
    return serveUntilSignal(async () => {
      await stack.stop();
      await telemetry.shutdown();
    }, stack.done);
  }
}

export class WorkerCommand extends ServiceCommand {
  static override paths = [['worker']];
  static override usage = Command.Usage({
    description: 'Run an orchestrator worker (JobWorkflow and its activities) for this host',
    details:
      'Polls the shared task queue and its host queue (<task queue>@<host id>). On SIGTERM it stops polling and finishes in-flight tasks.',
  });

  async execute(): Promise<number> {
    const cfg = this.config();
    const log = createLogger('solstice-worker');
    const telemetry = initTelemetry('solstice-worker', cfg);
    if (cfg.migrateOnBoot) await migrate({ databaseUrl: effectiveDatabaseUrl(cfg) });
    // A missing bucket or refused credentials stop the worker here, not at a job's end.
    const blobs = createBlobStore(cfg);
    await blobs.check();
    log.info({ blobs: blobs.describe() }, 'blob store');
    const store = await openStore(cfg);
    const worker = await startOrchestratorWorker(cfg, { jobs: store.jobs, blobs, log });
    return serveUntilSignal(async () => {
      await worker.shutdown();
      await blobs.close();
      await store.close();
      await telemetry.shutdown();
    }, worker.done);
  }
}

export class LogServiceCommand extends ServiceCommand {
  static override paths = [['log-service']];
  static override usage = Command.Usage({
    description: 'Run the gRPC log service that runners stream to',
  });

  async execute(): Promise<number> {
    const cfg = this.config();
    const log = createLogger('solstice-log-service');
    const telemetry = initTelemetry('solstice-log-service', cfg);
    if (cfg.migrateOnBoot) await migrate({ databaseUrl: effectiveDatabaseUrl(cfg) });
    const store = await openStore(cfg);
    const temporal = await connectClient(cfg);
    const server = await startLogService(cfg.grpcAddr, { jobs: store.jobs, temporal: temporal.client, log });
    this.context.stdout.write(`log service listening on ${server.address}\n`);
    return serveUntilSignal(async () => {
      await server.close();
      await temporal.close();
      await store.close();
      await telemetry.shutdown();
    });
  }
}

export class RunnerServeCommand extends ServiceCommand {
  static override paths = [['runner-serve']];
  static override usage = Command.Usage({
    description: 'Serve the runner for machines to download (GET /runner.js)',
  });

  async execute(): Promise<number> {
    const cfg = this.config();
    const server = await startRunnerServer({ addr: cfg.runnerServeAddr, bundlePath: runnerBundlePath() });
    this.context.stdout.write(`serving the runner at ${server.url}\n`);
    return serveUntilSignal(server.close);
  }
}
