import { Command, Option } from 'clipanion';
import { ConnectedCommand } from '../settings-options';

export class PoolStatusCommand extends ConnectedCommand {
  static override paths = [['pool', 'status']];
  static override usage = Command.Usage({
    description: 'Show the warm-pool machines of every host',
    details: `
      One row per pool machine: host, label, state (booting: its runner has not called yet; idle:
      waiting for a job; reserved: a job was granted it; claimed: its job is being delivered;
      dead: being destroyed), machine id, age, and how long it has waited idle. Pools are set per
      label with the image map's \`pool:\` or SOLSTICE_POOLS (docs/qemu.md, "Warm pools"); the
      host's PoolWorkflow (\`pool/<host id>\` in the Temporal Web UI) keeps them filled.
    `,
    examples: [
      ['All pool machines', 'solstice pool status'],
      ['As JSON', 'solstice pool status --json'],
    ],
  });

  json = Option.Boolean('--json', false, { description: 'Print JSON lines instead of a table' });

  async execute(): Promise<number> {
    const [{ withStore }, { PoolStore }] = await Promise.all([
      import('../context'),
      import('../../capacity/pool-store'),
    ]);
    return withStore(this.config(), async (store) => {
      const rows = await new PoolStore(store.db).list();
      if (this.json) {
        for (const m of rows) this.context.stdout.write(`${JSON.stringify(m)}\n`);
        return 0;
      }
      if (rows.length === 0) {
        this.context.stdout.write('no pool machines (no host has a warm pool, or they are all claimed)\n');
        return 0;
      }
      const secs = (ms: number | null | undefined) =>
        ms === null || ms === undefined ? '-' : `${Math.round(ms / 1000)}s`;
      const table = [
        ['HOST', 'LABEL', 'STATE', 'MACHINE', 'AGE', 'IDLE'],
        ...rows.map((m) => [
          m.hostId,
          m.label,
          m.state === 'idle' && m.reservedJobId ? 'reserved' : m.state,
          m.id,
          secs(m.ageMs),
          m.idleSince ? secs(Date.now() - m.idleSince.getTime()) : '-',
        ]),
      ];
      const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
      for (const r of table)
        this.context.stdout.write(
          `${r
            .map((c, i) => c.padEnd(widths[i]))
            .join('  ')
            .trimEnd()}\n`,
        );
      return 0;
    });
  }
}
