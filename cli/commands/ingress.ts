/** `solstice bridge` and `solstice webhook serve`: the two halves of forge → RabbitMQ → Temporal. */
import { Command } from 'clipanion';
import type { AmqpConnection } from '../../ingress/amqp';
import { AMQP_OFF, SETTINGS, type Config, type SettingKey } from '../../platform/config';
import { ConfigError } from '../../platform/errors';
import { ConnectedCommand, SettingsCommand } from '../settings-options';

export class BridgeCommand extends ConnectedCommand {
  static override settings = ConnectedCommand.withSettings(
    'amqpUrl',
    'amqpPrefix',
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
      Consumes JobRequest v1 messages from the queue <prefix>.jobs.v1 (AMQP_URL; AMQP_PREFETCH at once;
      the prefix is SOLSTICE_AMQP_PREFIX, by default solstice.<installation id>) and starts a JobWorkflow for each on the task queue, with a workflow id derived from the request,
      so a message delivered twice starts one run. A message is acknowledged only once Temporal has the
      start; an invalid one goes to <prefix>.jobs.v1.dlq with the reason in its x-solstice-reason header.
      If RabbitMQ is unreachable at start the command exits 69; later connection losses are retried.
    `,
  });

  async execute(): Promise<number> {
    const cfg = this.config();
    brokerRequired(cfg, 'the bridge');
    // Loaded when the service runs, so other commands do not pay for its SDKs.
    const [{ ServiceProcess }, { connectClient }, { AmqpConnection }, { startBridge }, { brokerTopology }] =
      await Promise.all([
        import('../service-process'),
        import('../../platform/temporal'),
        import('../../ingress/amqp'),
        import('../../ingress/bridge'),
        import('../context'),
      ]);
    const svc = new ServiceProcess('solstice-bridge', { cfg });
    const { log } = svc;
    const topology = await brokerTopology(cfg);
    const temporal = await connectClient(cfg);
    let amqp: AmqpConnection;
    try {
      amqp = await AmqpConnection.connect({ url: cfg.amqpUrl, log, name: 'solstice bridge', topology });
    } catch (err) {
      await temporal.close();
      throw err;
    }
    const bridge = startBridge(cfg, { amqp, temporal: temporal.client, log });
    this.context.stdout.write(
      `bridge consuming ${topology.queue} from ${amqp.url}, starting runs on task queue ${cfg.taskQueue}\n`,
    );
    return svc.serve([() => bridge.close(), () => amqp.close(), () => temporal.close()]);
  }
}

/** Services that exist only to use the broker refuse AMQP_URL=none with what to do instead. */
function brokerRequired(cfg: Config, what: string): void {
  if (cfg.amqpUrl === AMQP_OFF)
    throw new ConfigError(
      `${SETTINGS.amqpUrl.env}=${AMQP_OFF} turns the broker off, and ${what} needs one`,
      `set ${SETTINGS.amqpUrl.env} to your RabbitMQ (amqp://user:password@host:5672/vhost), or start runs with \`solstice enqueue\``,
    );
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
    'amqpPrefix',
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
    webhookSecrets(cfg); // refuses to start when no endpoint could verify a delivery
    brokerRequired(cfg, 'the webhook server');
    const [
      { ServiceProcess },
      { AmqpConnection },
      { configuredWebhookOptions, endpointPolicy, startWebhookServer },
      { brokerTopology },
      { createOutbox },
      { createDb },
    ] = await Promise.all([
      import('../service-process'),
      import('../../ingress/amqp'),
      import('../../ingress/webhook-server'),
      import('../context'),
      import('../../ingress/outbox'),
      import('../../storage/db'),
    ]);
    const svc = new ServiceProcess('solstice-webhook', { cfg });
    const { log } = svc;
    // Without SOLSTICE_AMQP_PREFIX the names come from the installation id in the database.
    const topology = await brokerTopology(cfg);
    // The server starts even while RabbitMQ is down: deliveries answer 503 until it is back.
    const amqp = await AmqpConnection.connect(
      { url: cfg.amqpUrl, log, name: 'solstice webhook', topology },
      { waitForFirst: false },
    );
    const publisher = amqp.publisher();
    const db = cfg.databaseUrl ? createDb(cfg) : undefined;
    const outbox = db ? createOutbox(db, publisher, log) : undefined;
    const options = configuredWebhookOptions(cfg, { publisher, outbox, log, brokerUp: () => amqp.connected });
    const server = await startWebhookServer(options);
    this.context.stdout.write(`webhook ingress listening on ${server.url}\n`);
    this.context.stdout.write(
      outbox
        ? '  outbox: deliveries wait in PostgreSQL while RabbitMQ is down\n'
        : '  outbox: off (no DATABASE_URL): deliveries answer 503 while RabbitMQ is down, and are lost\n',
    );
    for (const forge of ['forgejo', 'github'] as const)
      this.context.stdout.write(`  ${server.url}/webhooks/${forge}  ${endpointPolicy(options, forge)}\n`);
    return svc.serve([
      () => server.close(),
      async () => outbox?.close(),
      () => publisher.close(),
      () => amqp.close(),
      async () => db?.$disconnect(),
    ]);
  }
}
