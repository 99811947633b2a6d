/** `solstice bridge` and `solstice webhook serve`: the two halves of forge → RabbitMQ → Temporal. */
import { Command } from 'clipanion';
import { AmqpConnection } from '../../ingress/amqp';
import { SETTINGS, type Config, type SettingKey } from '../../platform/config';
import { ConfigError } from '../../platform/errors';
import { connectClient } from '../../platform/temporal';
import { startBridge } from '../../ingress/bridge';
import { configuredWebhookOptions, startWebhookServer } from '../../ingress/webhook-server';
import { createOutbox } from '../../ingress/outbox';
import { createDb } from '../../storage/db';
import { ServiceProcess } from '../service-process';
import { ConnectedCommand, SettingsCommand } from '../settings-options';

export class BridgeCommand extends ConnectedCommand {
  static override settings = ConnectedCommand.withSettings(
    'amqpUrl',
    'amqpPrefetch',
    'webhookDedupeWindowMs',
    'otlpEndpoint',
    'metricsAddr',
    'jobTimeoutMs',
    'bootTimeoutMs',
  );
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

  async execute(): Promise<number> {
    const cfg = this.config();
    const svc = new ServiceProcess('solstice-bridge', { cfg });
    const { log } = svc;
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
    return svc.serve([() => bridge.close(), () => amqp.close(), () => temporal.close()]);
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

export class WebhookServeCommand extends SettingsCommand {
  static override settings: readonly SettingKey[] = [
    'webhookAddr',
    'webhookBodyLimit',
    'forgejoWebhookSecret',
    'githubWebhookSecret',
    'webhookInsecure',
    'webhookDedupeWindowMs',
    'amqpUrl',
    'databaseUrl',
    'otlpEndpoint',
    'metricsAddr',
  ];
  static override paths = [['webhook', 'serve']];
  static override usage = Command.Usage({
    description: 'Receive forge webhooks and queue a job request for each push and pull request',
    details: `
      POST /webhooks/forgejo (Forgejo and Gitea; also /webhooks/gitea) and POST /webhooks/github.
      Every delivery must carry a valid HMAC-SHA256 signature of its body (X-Forgejo-Signature or
      X-Gitea-Signature; X-Hub-Signature-256). push and pull_request (opened, synchronize, reopened)
      queue a JobRequest v1 in RabbitMQ and answer 202 once the broker confirmed it; ping answers pong;
      branch deletions and other events answer 200 with the reason they are ignored. While RabbitMQ is
      unavailable, deliveries are kept in the PostgreSQL outbox (DATABASE_URL) and answered 202; they are
      published in order once the broker is back. Forges do not deliver a failed webhook again, so only
      when neither RabbitMQ nor the database takes it is the answer 503. GET /healthz reports the broker.
    `,
  });

  async execute(): Promise<number> {
    const cfg = this.config();
    const secrets = webhookSecrets(cfg);
    const svc = new ServiceProcess('solstice-webhook', { cfg });
    const { log } = svc;
    // The server starts even while RabbitMQ is down: deliveries answer 503 until it is back.
    const amqp = await AmqpConnection.connect(
      { url: cfg.amqpUrl, log, name: 'solstice webhook' },
      { waitForFirst: false },
    );
    const publisher = amqp.publisher();
    const db = cfg.databaseUrl ? createDb(cfg) : undefined;
    const outbox = db ? createOutbox(db, publisher, log) : undefined;
    const server = await startWebhookServer(
      configuredWebhookOptions(cfg, { publisher, outbox, log, brokerUp: () => amqp.connected }),
    );
    this.context.stdout.write(`webhook ingress listening on ${server.url}\n`);
    this.context.stdout.write(
      outbox
        ? '  outbox: deliveries wait in PostgreSQL while RabbitMQ is down\n'
        : '  outbox: off (no DATABASE_URL): deliveries answer 503 while RabbitMQ is down, and are lost\n',
    );
    for (const forge of ['forgejo', 'github'] as const)
      this.context.stdout.write(
        `  ${server.url}/webhooks/${forge}  ${secrets[forge] ? 'signed deliveries only' : 'UNSIGNED deliveries accepted (insecure)'}\n`,
      );
    return svc.serve([
      () => server.close(),
      async () => outbox?.close(),
      () => publisher.close(),
      () => amqp.close(),
      async () => db?.$disconnect(),
    ]);
  }
}
