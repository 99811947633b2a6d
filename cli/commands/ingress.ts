/** `solstice bridge` and `solstice webhook serve`: the two halves of forge → RabbitMQ → Temporal. */
import { Command, Option } from 'clipanion';
import { AmqpConnection } from '../../ingress/amqp';
import { loadConfig, SETTINGS, type Config } from '../../platform/config';
import { ConfigError } from '../../platform/errors';
import { createLogger } from '../../platform/logger';
import { serveUntilSignal } from '../../platform/shutdown';
import { initTelemetry } from '../../platform/telemetry';
import { connectClient } from '../../platform/temporal';
import { startBridge } from '../../ingress/bridge';
import { configuredWebhookOptions, startWebhookServer } from '../../ingress/webhook-server';
import { ConnectedCommand, settingOption } from '../settings-options';

export class BridgeCommand extends ConnectedCommand {
  static override paths = [['bridge']];
  static override usage = Command.Usage({
    description: 'Start a run for every job request queued in RabbitMQ',
    details: `
      Consumes JobRequest v1 messages from the queue solstice.jobs.v1 (AMQP_URL; AMQP_PREFETCH at once)
      and starts a JobWorkflow for each on the task queue, with a workflow id derived from the request,
      so a message delivered twice starts one run. A message is acknowledged only once Temporal has the
      start; an invalid one goes to solstice.jobs.v1.dlq with the reason in its x-solstice-reason header.
      If RabbitMQ is unreachable at start the command exits 69; later connection losses are retried.
    `,
  });

  amqpUrl = settingOption('amqpUrl');
  amqpPrefetch = settingOption('amqpPrefetch');
  otlpEndpoint = settingOption('otlpEndpoint');
  metricsAddr = settingOption('metricsAddr');
  jobTimeout = settingOption('jobTimeoutMs');
  bootTimeout = settingOption('bootTimeoutMs');

  async execute(): Promise<number> {
    const cfg = this.config({ jobTimeoutMs: this.jobTimeout, bootTimeoutMs: this.bootTimeout });
    const log = createLogger('solstice-bridge');
    const telemetry = initTelemetry('solstice-bridge', cfg);
    const temporal = await connectClient(cfg);
    let amqp: AmqpConnection;
    try {
      amqp = await AmqpConnection.connect({ url: cfg.amqpUrl, log, name: 'solstice bridge' });
    } catch (err) {
      await temporal.close();
      throw err;
    }
    const bridge = startBridge(cfg, { amqp, temporal: temporal.client, log });
    this.context.stdout.write(
      `bridge consuming from ${amqp.url}, starting runs on task queue ${cfg.taskQueue}\n`,
    );
    return serveUntilSignal({
      log,
      stop: async () => {
        await bridge.close();
        await amqp.close();
        await temporal.close();
        await telemetry.shutdown();
      },
    });
  }
}

/** Refuses a webhook server that could verify nothing, unless the operator insists. */
export function webhookSecrets(cfg: Config): { forgejo?: string; github?: string } {
  const secrets = { forgejo: cfg.forgejoWebhookSecret, github: cfg.githubWebhookSecret };
  if (!secrets.forgejo && !secrets.github && !cfg.webhookInsecure) {
    throw new ConfigError(
      'no webhook secret is configured, so no delivery could be verified',
      `Set ${SETTINGS.forgejoWebhookSecret.env} and/or ${SETTINGS.githubWebhookSecret.env} to the secret ` +
        `configured in the forge, or pass ${SETTINGS.webhookInsecure.flag} for a local experiment.`,
    );
  }
  return secrets;
}

export class WebhookServeCommand extends Command {
  static override paths = [['webhook', 'serve']];
  static override usage = Command.Usage({
    description: 'Receive forge webhooks and queue a job request for each push and pull request',
    details: `
      POST /webhooks/forgejo (Forgejo and Gitea; also /webhooks/gitea) and POST /webhooks/github.
      Every delivery must carry a valid HMAC-SHA256 signature of its body (X-Forgejo-Signature or
      X-Gitea-Signature; X-Hub-Signature-256). push and pull_request (opened, synchronize, reopened)
      queue a JobRequest v1 in RabbitMQ and answer 202 once the broker confirmed it; ping answers pong;
      branch deletions and other events answer 200 with the reason they are ignored. While RabbitMQ is
      unavailable deliveries answer 503, so the forge delivers them again. GET /healthz reports the broker.
    `,
  });

  webhookAddr = settingOption('webhookAddr');
  webhookBodyLimit = settingOption('webhookBodyLimit');
  forgejoWebhookSecret = settingOption('forgejoWebhookSecret');
  githubWebhookSecret = settingOption('githubWebhookSecret');
  insecure = Option.Boolean(SETTINGS.webhookInsecure.flag, {
    description: `${SETTINGS.webhookInsecure.description} [env: ${SETTINGS.webhookInsecure.env}; default: ${SETTINGS.webhookInsecure.defaultText}]`,
  });
  amqpUrl = settingOption('amqpUrl');
  otlpEndpoint = settingOption('otlpEndpoint');
  metricsAddr = settingOption('metricsAddr');
  verbose = Option.Boolean('--verbose', false, {
    description: 'Print stack traces of errors [env: SOLSTICE_DEBUG]',
  });

  async execute(): Promise<number> {
    const cfg = loadConfig({
      webhookAddr: this.webhookAddr,
      webhookBodyLimit: this.webhookBodyLimit,
      forgejoWebhookSecret: this.forgejoWebhookSecret,
      githubWebhookSecret: this.githubWebhookSecret,
      webhookInsecure: this.insecure === undefined ? undefined : String(this.insecure),
      amqpUrl: this.amqpUrl,
      otlpEndpoint: this.otlpEndpoint,
      metricsAddr: this.metricsAddr,
    });
    const secrets = webhookSecrets(cfg);
    const log = createLogger('solstice-webhook');
    const telemetry = initTelemetry('solstice-webhook', cfg);
    // The server starts even while RabbitMQ is down: deliveries answer 503 until it is back.
    const amqp = await AmqpConnection.connect(
      { url: cfg.amqpUrl, log, name: 'solstice webhook' },
      { waitForFirst: false },
    );
    const publisher = amqp.publisher();
    const server = await startWebhookServer(
      configuredWebhookOptions(cfg, { publisher, log, brokerUp: () => amqp.connected }),
    );
    this.context.stdout.write(`webhook ingress listening on ${server.url}\n`);
    for (const forge of ['forgejo', 'github'] as const)
      this.context.stdout.write(
        `  ${server.url}/webhooks/${forge}  ${secrets[forge] ? 'signed deliveries only' : 'UNSIGNED deliveries accepted (insecure)'}\n`,
      );
    return serveUntilSignal({
      log,
      stop: async () => {
        await server.close();
        await publisher.close();
        await amqp.close();
        await telemetry.shutdown();
      },
    });
  }
}
