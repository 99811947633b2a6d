/**
 * A real Gitea (built by `infra/bootstrap.sh gitea`, pinned in infra/versions.env) for the
 * forge tests and `bench:forge`: one server per test file or bench run on SQLite, free loopback ports, a temp dir removed on
 * stop. The first call builds Gitea if it is not built yet (about 15 minutes once, cached
 * after that), so only the tests that need a real forge pay for it.
 *
 * Users, organisations, repositories (public or private), tokens with chosen scopes and
 * webhooks are made through Gitea's own API, the way an operator would; commits are pushed
 * with git over HTTP. Sign-in tests can add users with or without access to a repository
 * (`createUser` + `addCollaborator`) and OAuth2 apps (`api('POST', '/user/applications/oauth2')`).
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../platform/net';
import { readSetting } from '../platform/config';
import { findTool, logTail, startToolProcess, type ToolProcess, type ToolSpec } from './tool-process';

const run = promisify(execFile);
/** The checkout, from the sources (devstack/) or from dist/devstack/. */
const ROOT =
  [path.resolve(__dirname, '..'), path.resolve(__dirname, '../..')].find((d) =>
    fs.existsSync(path.join(d, 'infra/versions.env')),
  ) ?? path.resolve(__dirname, '..');
/** Who the commits `push` makes are by. */
const PUSH_IDENTITY = {
  GIT_AUTHOR_NAME: 't',
  GIT_AUTHOR_EMAIL: 't@example.invalid',
  GIT_COMMITTER_NAME: 't',
  GIT_COMMITTER_EMAIL: 't@example.invalid',
} as const;

export const GITEA: ToolSpec = { binary: 'gitea', title: 'Gitea', envVar: 'SOLSTICE_GITEA_BIN' };

export interface GiteaUser {
  name: string;
  password: string;
  /** An API token of this user (scope `all` unless made otherwise). */
  token: string;
}

export interface GiteaRepo {
  owner: string;
  name: string;
  /** `owner/name` */
  fullName: string;
  /** HTTP clone URL, as Gitea puts it in webhook payloads. */
  cloneUrl: string;
  private: boolean;
}

export interface CommitStatus {
  context: string;
  state: string;
  description: string;
  target_url: string;
  id: number;
}

export interface PushOptions {
  branch?: string;
  message?: string;
  /** Also push a tag at the new commit; annotated tags are tag objects of their own. */
  tag?: { name: string; annotated: boolean };
}

export interface Gitea {
  /** `http://127.0.0.1:<port>` */
  url: string;
  admin: GiteaUser;
  /** One API call (`path` below /api/v1) as `as` (default: the admin); throws on non-2xx. */
  api<T = unknown>(method: string, path: string, body?: unknown, as?: GiteaUser): Promise<T>;
  /** A new user with a token; `scopes` default to `all`. */
  createUser(name: string, opts?: { admin?: boolean; scopes?: string[] }): Promise<GiteaUser>;
  /** Another token of `user` with only `scopes` (e.g. `['read:repository']`). */
  createToken(user: GiteaUser, scopes: string[]): Promise<string>;
  createOrg(name: string, owner?: GiteaUser): Promise<void>;
  /** A repository owned by `owner` (a user or an org the admin belongs to; default the admin). */
  createRepo(name: string, opts?: { owner?: string; private?: boolean }): Promise<GiteaRepo>;
  addCollaborator(repo: GiteaRepo, user: string, permission?: 'read' | 'write' | 'admin'): Promise<void>;
  /** A Gitea-type webhook on push and pull_request, JSON, signed with `secret`; returns its id. */
  addWebhook(repo: GiteaRepo, url: string, secret: string): Promise<number>;
  /** Writes `files` (path → content; executable when it ends in .sh), commits and pushes. */
  push(repo: GiteaRepo, files: Record<string, string>, opts?: PushOptions): Promise<string>;
  /** Opens a pull request from `head` into `base` (default main); returns its number. */
  openPullRequest(repo: GiteaRepo, head: string, base?: string): Promise<number>;
  /** The commit's statuses, newest first (every update, not only the latest per context). */
  statuses(repo: GiteaRepo, sha: string): Promise<CommitStatus[]>;
  /** The latest status per context, as the commit page shows them. */
  latestStatuses(repo: GiteaRepo, sha: string): Promise<Map<string, CommitStatus>>;
  /** Gitea's "Replay" button on one delivery (its uuid is the X-Gitea-Delivery header). */
  replay(repo: GiteaRepo, hookId: number, deliveryId: string): Promise<void>;
  /** Stops the server, keeping its data, for outage tests; `start` brings it back. */
  pause(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

function giteaVersion(): string {
  const env = fs.readFileSync(path.join(ROOT, 'infra/versions.env'), 'utf8');
  const m = /^GITEA_VERSION=(\S+)/m.exec(env);
  if (!m) throw new Error('infra/versions.env has no GITEA_VERSION');
  return m[1];
}

/** Builds Gitea on first use (a no-op when it is built), then finds the binary and its templates. */
function ensureGitea(): { binary: string; staticRoot: string } {
  if (!process.env[GITEA.envVar]) {
    execFileSync('bash', [path.join(ROOT, 'infra/bootstrap.sh'), 'gitea'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }
  const binary = findTool(GITEA);
  const staticRoot =
    process.env.SOLSTICE_GITEA_STATIC_ROOT ??
    path.join(readSetting('toolsDir', process.env), 'gitea-src', giteaVersion());
  if (!fs.existsSync(path.join(staticRoot, 'templates')))
    throw new Error(`Gitea's templates are missing in ${staticRoot}; run \`bash infra/bootstrap.sh gitea\``);
  return { binary, staticRoot };
}

function appIni(dir: string, port: number, staticRoot: string): string {
  return `APP_NAME = solstice-test
RUN_MODE = prod
WORK_PATH = ${dir}
I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true

[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = ${port}
ROOT_URL = http://127.0.0.1:${port}/
STATIC_ROOT_PATH = ${staticRoot}
APP_DATA_PATH = ${dir}/data
DISABLE_SSH = true
START_SSH_SERVER = false
OFFLINE_MODE = true
LFS_START_SERVER = false

[database]
DB_TYPE = sqlite3
PATH = ${dir}/data/gitea.db
SQLITE_JOURNAL_MODE = WAL

[repository]
ROOT = ${dir}/repos

[security]
INSTALL_LOCK = true
PASSWORD_HASH_ALGO = pbkdf2_hi
MIN_PASSWORD_LENGTH = 6
PASSWORD_COMPLEXITY = off

[service]
DISABLE_REGISTRATION = true
REQUIRE_SIGNIN_VIEW = false
DEFAULT_KEEP_EMAIL_PRIVATE = true
NO_REPLY_ADDRESS = noreply.invalid

[webhook]
ALLOWED_HOST_LIST = loopback
DELIVER_TIMEOUT = 30
; Deliveries go out at once, one by one in order, as the tests expect.
QUEUE_LENGTH = 1000

[queue]
TYPE = level

[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false

[session]
PROVIDER = memory

[cache]
ADAPTER = memory

[mailer]
ENABLED = false

[cron]
ENABLED = false

[cron.update_checker]
ENABLED = false

[log]
MODE = file
LEVEL = Warn
ROOT_PATH = ${dir}/log

[actions]
ENABLED = false

[packages]
ENABLED = false
`;
}

const git = (cwd: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}) =>
  run('git', args, {
    cwd,
    env: {
      ...process.env,
      ...PUSH_IDENTITY,
      GIT_TERMINAL_PROMPT: '0',
      ...extraEnv,
    },
  }).then((r) => r.stdout.trim());

export async function startGitea(): Promise<Gitea> {
  const { binary, staticRoot } = ensureGitea();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-gitea-'));
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  const port = await freePort();
  const config = path.join(dir, 'app.ini');
  fs.writeFileSync(config, appIni(dir, port, staticRoot));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    GITEA_WORK_DIR: dir,
    GITEA_CUSTOM: path.join(dir, 'custom'),
    HOME: dir,
    USER: 'root',
  };
  const cli = (...args: string[]) =>
    run(binary, ['--config', config, '--work-path', dir, ...args], { env, cwd: dir }).then((r) =>
      r.stdout.trim(),
    );

  const url = `http://127.0.0.1:${port}`;
  const logFile = path.join(dir, 'gitea-stdout.log');
  let proc: ToolProcess | undefined;
  const start = async () => {
    proc = startToolProcess(binary, ['--config', config, '--work-path', dir, 'web'], { logFile, env });
    try {
      await proc.waitForPorts('127.0.0.1', [port], { timeoutMs: 180_000, what: 'gitea' });
    } catch (err) {
      // The error has the end of its output already; Gitea writes the rest to a log of its own.
      throw new Error(
        `${(err as Error).message}\ngitea log:\n${logTail(path.join(dir, 'log/gitea.log'), 20)}`,
        {
          cause: err,
        },
      );
    }
  };
  const stopServer = async () => {
    await proc?.stop();
    proc = undefined;
  };

  let admin: GiteaUser;
  try {
    // A fresh database: create Gitea's tables, then the admin, before the server starts.
    await cli('migrate');
    const password = 'admin-password-1';
    await cli(
      'admin',
      'user',
      'create',
      '--admin',
      '--username',
      'solstice-admin',
      '--password',
      password,
      '--email',
      'admin@example.invalid',
      '--must-change-password=false',
    );
    const token = await cli(
      'admin',
      'user',
      'generate-access-token',
      '--username',
      'solstice-admin',
      '--token-name',
      'tests',
      '--scopes',
      'all',
      '--raw',
    );
    admin = { name: 'solstice-admin', password, token };
    await start();
  } catch (err) {
    await stopServer();
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  const api = async <T>(method: string, p: string, body?: unknown, as: GiteaUser = admin): Promise<T> => {
    const res = await fetch(`${url}/api/v1${p}`, {
      method,
      headers: {
        authorization: `token ${as.token}`,
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`gitea ${method} ${p} answered ${res.status}: ${text.slice(0, 500)}`);
    return (text ? JSON.parse(text) : undefined) as T;
  };

  const createToken = async (user: GiteaUser, scopes: string[]): Promise<string> => {
    // Tokens are made with the user's password (basic auth), as Gitea requires.
    const res = await fetch(`${url}/api/v1/users/${user.name}/tokens`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${user.name}:${user.password}`).toString('base64')}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ name: `t-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`, scopes }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`gitea token for ${user.name} answered ${res.status}: ${text}`);
    return (JSON.parse(text) as { sha1: string }).sha1;
  };

  const clones = new Map<string, string>();
  const workTree = async (repo: GiteaRepo): Promise<string> => {
    let wt = clones.get(repo.fullName);
    if (!wt) {
      wt = fs.mkdtempSync(path.join(dir, 'wt-'));
      await git(wt, ['init', '-q', '-b', 'main']);
      await git(wt, ['remote', 'add', 'origin', repo.cloneUrl]);
      clones.set(repo.fullName, wt);
    }
    return wt;
  };
  // The token travels in a header, not in the remote URL, so it is in no git config or reflog.
  const pushEnv = () => ({
    GIT_CONFIG_COUNT: '1',
    GIT_CONFIG_KEY_0: 'http.extraHeader',
    GIT_CONFIG_VALUE_0: `Authorization: token ${admin.token}`,
  });

  const gitea: Gitea = {
    url,
    admin,
    api,
    async createUser(name, opts = {}) {
      const password = `${name}-password-1`;
      await api('POST', '/admin/users', {
        username: name,
        password,
        email: `${name}@example.invalid`,
        must_change_password: false,
      });
      if (opts.admin)
        await api('PATCH', `/admin/users/${name}`, { admin: true, login_name: name, source_id: 0 });
      const user = { name, password, token: '' };
      user.token = await createToken(user, opts.scopes ?? ['all']);
      return user;
    },
    createToken,
    async createOrg(name, owner = admin) {
      await api('POST', '/orgs', { username: name, visibility: 'public' }, owner);
    },
    async createRepo(name, opts = {}) {
      const owner = opts.owner ?? admin.name;
      const body = { name, private: opts.private ?? false, default_branch: 'main', auto_init: false };
      const isUser = owner === admin.name;
      const r = await api<{ clone_url: string; full_name: string; private: boolean }>(
        'POST',
        isUser ? '/user/repos' : `/orgs/${owner}/repos`,
        body,
      );
      return { owner, name, fullName: r.full_name, cloneUrl: r.clone_url, private: r.private };
    },
    async addCollaborator(repo, user, permission = 'read') {
      await api('PUT', `/repos/${repo.fullName}/collaborators/${user}`, { permission });
    },
    async addWebhook(repo, hookUrl, secret) {
      const r = await api<{ id: number }>('POST', `/repos/${repo.fullName}/hooks`, {
        type: 'gitea',
        active: true,
        branch_filter: '*',
        events: ['push', 'pull_request', 'pull_request_sync'],
        config: { url: hookUrl, content_type: 'json', secret },
      });
      return r.id;
    },
    async push(repo, files, opts = {}) {
      const wt = await workTree(repo);
      const branch = opts.branch ?? 'main';
      const branches = await git(wt, ['branch', '--list', branch]);
      const head = await git(wt, ['rev-parse', '--verify', '-q', 'HEAD']).catch(() => '');
      if (!branches && head) await git(wt, ['checkout', '-q', '-b', branch]);
      else if (head) await git(wt, ['checkout', '-q', branch]);
      else if (branch !== 'main') await git(wt, ['checkout', '-q', '--orphan', branch]);
      for (const [name, content] of Object.entries(files)) {
        const file = path.join(wt, name);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, content, { mode: name.endsWith('.sh') ? 0o755 : 0o644 });
      }
      await git(wt, ['add', '-A']);
      await git(wt, ['commit', '-q', '--allow-empty', '-m', opts.message ?? 'test commit']);
      const sha = await git(wt, ['rev-parse', 'HEAD']);
      const refs = [`HEAD:refs/heads/${branch}`];
      if (opts.tag) {
        await git(
          wt,
          opts.tag.annotated
            ? ['tag', '-a', opts.tag.name, '-m', `tag ${opts.tag.name}`]
            : ['tag', opts.tag.name],
        );
        refs.push(`refs/tags/${opts.tag.name}`);
      }
      await git(wt, ['push', '-q', 'origin', ...refs], pushEnv());
      return sha;
    },
    async openPullRequest(repo, head, base = 'main') {
      const r = await api<{ number: number }>('POST', `/repos/${repo.fullName}/pulls`, {
        head,
        base,
        title: `pr from ${head}`,
      });
      return r.number;
    },
    async statuses(repo, sha) {
      // Gitea names the state `status` in what it returns (and `state` in what it takes).
      const raw = await api<(CommitStatus & { status?: string })[]>(
        'GET',
        `/repos/${repo.fullName}/statuses/${sha}?limit=200&sort=newest`,
      );
      return raw.map((s) => ({ ...s, state: s.state ?? s.status ?? '' }));
    },
    async latestStatuses(repo, sha) {
      const latest = new Map<string, CommitStatus>();
      // Newest first, ties (same second) broken by id: the first seen per context is the latest.
      const all = (await gitea.statuses(repo, sha)).sort((a, b) => b.id - a.id);
      for (const s of all) if (!latest.has(s.context)) latest.set(s.context, s);
      return latest;
    },
    async replay(repo, hookId, deliveryId) {
      // Replay is a web UI action (no API): sign in with the form, then press the button.
      const login = await fetch(`${url}/user/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ user_name: admin.name, password: admin.password }).toString(),
      });
      const cookies = login.headers
        .getSetCookie()
        .map((c) => c.split(';')[0])
        .join('; ');
      if (login.status !== 303 && login.status !== 302)
        throw new Error(`gitea sign-in answered ${login.status}: ${(await login.text()).slice(0, 300)}`);
      const res = await fetch(`${url}/${repo.fullName}/settings/hooks/${hookId}/replay/${deliveryId}`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie: cookies },
      });
      if (res.status !== 303 && res.status !== 302)
        throw new Error(`gitea replay answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
    },
    pause: stopServer,
    start,
    async stop() {
      await stopServer();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return gitea;
}
