/** `solstice doctor`: is everything Solstice depends on there and usable, and if not, what to do. */
import { Command } from 'clipanion';
import type { CheckResult } from '../doctor-checks';
import { ConfigError } from '../../platform/errors';
import { ServiceCommand } from '../settings-options';

const EX_UNAVAILABLE = 69;
const LABEL = { ok: 'ok', warn: 'warn', fail: 'FAIL', skip: 'skip' } as const;

export function formatCheck(r: CheckResult): string {
  const fix = r.hint && r.status !== 'ok' ? ` -> fix: ${r.hint}` : '';
  return `${LABEL[r.status].padEnd(5)} ${r.name.padEnd(11)} ${r.detail}${fix}`;
}

export class DoctorCommand extends ServiceCommand {
  static override paths = [['doctor']];
  static override usage = Command.Usage({
    description:
      'Check every dependency (Temporal and a worker polling it, PostgreSQL, RabbitMQ, blob store, log service, runner URL, QEMU, images, forge token)',
    details: `
      Uses the same settings (environment and flags) as the services, so run it with their
      environment. Prints one line per check: ok, warn (works, but worse than it could), FAIL (what
      is wrong and how to fix it) or skip (not configured). It shows the installation id (from the
      database), which names this installation's machines and broker queues. RabbitMQ is required
      only when AMQP_URL is set, and AMQP_URL=none turns it off (skip, not FAIL); QEMU is checked
      only when SOLSTICE_IMAGE_MAP is set. The worker check asks Temporal whether a worker polls
      SOLSTICE_TASK_QUEUE (without one, pipelines wait); the log service is asked for its gRPC
      health at ORCH_CONTACT_ADDR, and SOLSTICE_RUNNER_URL must answer, both as machines reach
      them. The Forgejo/Gitea token is checked by asking the forge at
      SOLSTICE_FORGEJO_API_URL whether it may write commit statuses (a read-only token FAILs).
      Exits 69 when any check FAILs, else 0.
    `,
  });

  static override settings = ServiceCommand.withSettings('amqpUrl', 'amqpPrefix');

  async execute(): Promise<number> {
    let results: CheckResult[];
    try {
      const cfg = this.config();
      const { runDependencyChecks } = await import('../doctor-checks');
      results = await runDependencyChecks(cfg, {
        amqpConfigured: this.given('amqpUrl'),
      });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      results = [{ name: 'settings', status: 'fail', detail: err.message, hint: err.hint }];
    }
    for (const r of results) this.context.stdout.write(`${formatCheck(r)}\n`);
    return results.some((r) => r.status === 'fail') ? EX_UNAVAILABLE : 0;
  }
}
