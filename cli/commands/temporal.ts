import { Command } from 'clipanion';
import { formatDuration } from '../../platform/duration';
import { SettingsCommand, TEMPORAL } from '../settings-options';

export class TemporalSetupCommand extends SettingsCommand {
  static override paths = [['temporal', 'setup']];
  static override usage = Command.Usage({
    description: 'Create the Temporal namespace and register Solstice search attributes',
    details: `
      For a Temporal cluster you run yourself (docs/deploy.md): a new cluster has no namespace
      and no custom search attributes, which the dev server that \`solstice up\` starts gets from
      its flags. Creates TEMPORAL_NAMESPACE when missing (its retention from
      SOLSTICE_TEMPORAL_RETENTION, else 3 days) and registers whichever Solstice search
      attributes it lacks. Safe to run again and from several hosts at once: it changes only
      what is missing. \`solstice doctor\` says when it is needed.
    `,
    examples: [
      ['Set up the default namespace', '$0 temporal setup'],
      [
        'A namespace of its own, over TLS',
        '$0 temporal setup --temporal-namespace ci --temporal-tls-ca-path ca.pem',
      ],
    ],
  });

  static override settings = [...TEMPORAL, 'temporalRetentionMs'] as const;

  async execute(): Promise<number> {
    const cfg = this.config();
    const [{ connectClient }, { setupNamespace }] = await Promise.all([
      import('../../platform/temporal'),
      import('../../ingress/temporal-namespace'),
    ]);
    const temporal = await connectClient(cfg);
    try {
      const r = await setupNamespace(temporal.client.connection, {
        namespace: cfg.temporalNamespace,
        retentionMs: cfg.temporalRetentionMs,
      });
      const out = this.context.stdout;
      const ns = `namespace "${cfg.temporalNamespace}" on ${cfg.temporalAddress}`;
      out.write(
        r.namespaceCreated
          ? `${ns}: created (retention ${formatDuration(r.retentionMs ?? 0)})\n`
          : `${ns}: exists\n`,
      );
      out.write(
        r.attributesAdded.length > 0
          ? `search attributes: registered ${r.attributesAdded.join(', ')}\n`
          : 'search attributes: all registered already\n',
      );
      return 0;
    } finally {
      await temporal.close();
    }
  }
}
