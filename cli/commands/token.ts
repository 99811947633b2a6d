import { Command, Option } from 'clipanion';
import { ConnectedCommand } from '../settings-options';

// Loaded when a token command runs, so other commands do not pay for it.
const load = () => Promise.all([import('../context'), import('../../access/tokens'), import('../output')]);

export class TokenCreateCommand extends ConnectedCommand {
  static override paths = [['token', 'create']];
  static override usage = Command.Usage({
    description: 'Make an API token; it is printed once, only its hash is kept',
    details: `
      --scope read lets the token list and read pipelines, jobs, logs and artifacts; write also
      enqueue, cancel and rerun; admin everything. --repo owner/name (repeatable) limits it to
      those repositories, otherwise it covers all. --expires 90d makes it stop working after that
      long. Give the token to the CLI as SOLSTICE_TOKEN together with SOLSTICE_API_URL, or send it
      as \`Authorization: Bearer <token>\` (docs/api.md).
    `,
    examples: [
      [
        'A read token for one repository, for 90 days',
        'solstice token create --name ci-bot --scope read --repo acme/app --expires 90d',
      ],
    ],
  });

  name = Option.String('--name', { required: true, description: 'What the token is for' });
  scope = Option.String('--scope', { required: true, description: 'read, write or admin' });
  repos = Option.Array('--repo', [], {
    description: 'owner/name of a repository it is limited to (repeatable)',
  });
  expires = Option.String('--expires', {
    description: 'How long it works, e.g. 90d or 12h (default: until revoked)',
  });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  async execute(): Promise<number> {
    const [{ withStore }, { TokenStore, readScope, readTokenRepo }] = await load();
    const { parseDuration } = await import('../../platform/units');
    const scope = readScope(this.scope);
    const repos = this.repos.map(readTokenRepo);
    const expiresInMs = this.expires === undefined ? undefined : parseDuration(this.expires, '--expires');
    return withStore(this.config(), async (store) => {
      const { token, record } = await new TokenStore(store.db).create({
        name: this.name,
        scope,
        repos,
        expiresInMs,
      });
      if (this.json) this.context.stdout.write(`${JSON.stringify({ ...record, token })}\n`);
      else
        this.context.stdout.write(
          `token ${record.id} "${record.name}" (${record.scope}${record.repos ? `, ${record.repos.join(', ')}` : ', every repository'}${record.expiresAt ? `, expires ${record.expiresAt.toISOString()}` : ''})\n` +
            `${token}\n` +
            'Store it now: it is not shown again.\n',
        );
      return 0;
    });
  }
}

export class TokenListCommand extends ConnectedCommand {
  static override paths = [['token', 'list']];
  static override usage = Command.Usage({ description: 'List API tokens (never their secrets)' });

  json = Option.Boolean('--json', false, { description: 'Print JSON lines instead of a table' });

  async execute(): Promise<number> {
    const [{ withStore }, { TokenStore }, { formatTable }] = await load();
    return withStore(this.config(), async (store) => {
      const list = await new TokenStore(store.db).list();
      const now = Date.now();
      const status = (t: (typeof list)[number]) =>
        t.revokedAt ? 'revoked' : t.expiresAt && t.expiresAt.getTime() <= now ? 'expired' : 'active';
      if (this.json) {
        for (const t of list) this.context.stdout.write(`${JSON.stringify({ ...t, status: status(t) })}\n`);
        return 0;
      }
      if (list.length === 0) {
        this.context.stdout.write('no tokens yet; `solstice token create` makes one\n');
        return 0;
      }
      const rows = [['ID', 'NAME', 'SCOPE', 'REPOS', 'STATUS', 'EXPIRES', 'LAST USED']];
      for (const t of list)
        rows.push([
          t.id,
          t.name,
          t.scope,
          t.repos ? t.repos.join(',') : '*',
          status(t),
          t.expiresAt?.toISOString() ?? '-',
          t.lastUsedAt?.toISOString() ?? '-',
        ]);
      this.context.stdout.write(formatTable(rows));
      return 0;
    });
  }
}

export class TokenRevokeCommand extends ConnectedCommand {
  static override paths = [['token', 'revoke']];
  static override usage = Command.Usage({
    description: 'Revoke an API token (by id or name); it stops working at once',
  });

  token = Option.String({ name: 'id|name' });

  async execute(): Promise<number> {
    const [{ withStore }, { TokenStore }] = await load();
    return withStore(this.config(), async (store) => {
      const t = await new TokenStore(store.db).revoke(this.token);
      this.context.stdout.write(`token ${t.id} "${t.name}" revoked\n`);
      return 0;
    });
  }
}
