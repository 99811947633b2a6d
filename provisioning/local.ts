/**
 * The `local` provider, for development and tests: a "machine" is a process tree in a fresh
 * folder on this host. It applies the very cloud-init user-data a VM would get: write_files
 * land under <machine>/root, and runcmd runs with SOLSTICE_ROOT pointing there.
 * It isolates nothing; use it only for code you trust.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import { constants as fsConstants, openSync, closeSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { ProvisioningError } from '../platform/errors';
import { RUNNER_LOADER_PATH, RUNNER_PATH, shellQuote } from './cloud-init';
import { RUNNER_LOADER_SOURCE } from './runner-loader';
import type { MachineHandle } from '../model/domain';
import { requestedMachineId, type MachineRequest, type Provider } from './contract';
import { readTail } from './file-tail';
import { killTagged, MACHINE_TAG_ENV } from './process-tree';
import { machineFolderName, machineTag, type MachineOwner } from './machine-name';
import { RunnerCache } from './runner-cache';
import {
  GIT_CACHE_ENV,
  hostGitCacheDir,
  RUNNER_CODE_CACHE_ENV,
  RUNNER_SHA256_ENV,
} from '../model/host-cache';

interface UserData {
  write_files?: { path: string; content: string; permissions?: string }[];
  runcmd?: (string | string[])[];
}

/** Only what a fresh machine would have; the worker's own secrets (DATABASE_URL, AWS_*) stay out. */
const PASSED_ENV = ['HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'USER', 'LOGNAME'];

export interface LocalProviderOptions {
  workspaceRoot: string;
  owner: MachineOwner;
  killGraceMs?: number;
  /**
   * What this host shares between its machines: the runner bundle by hash, and a bare
   * repository per job repository; absent: each machine downloads and fetches everything.
   */
  hostCache?: { dir: string; runnerUrl: string };
}

export class LocalProvider implements Provider {
  readonly name = 'local';
  private readonly runners?: RunnerCache;

  constructor(private readonly opts: LocalProviderOptions) {
    if (opts.hostCache)
      this.runners = new RunnerCache(path.join(opts.hostCache.dir, 'runner'), opts.hostCache.runnerUrl);
  }

  private dirOf(machineId: string): string {
    return path.join(this.opts.workspaceRoot, machineFolderName(this.opts.owner, machineId));
  }

  private tagOf(machineId: string): string {
    return machineTag(this.opts.owner, machineId);
  }

  async create(req: MachineRequest): Promise<MachineHandle> {
    const machineId = requestedMachineId(req);
    const handle: MachineHandle = {
      machineId,
      provider: this.name,
      hostId: this.opts.owner.hostId,
      details: { dir: this.dirOf(machineId) },
    };
    // A retried create (the previous worker died half-way) starts from nothing. Without its
    // folder no process of it was started (spawn comes after mkdir), so the scan of every
    // process's environment is skipped on a first create.
    if (await exists(this.dirOf(machineId))) await this.destroy(handle);

    const dir = this.dirOf(machineId);
    const root = path.join(dir, 'root');
    await fs.mkdir(path.join(dir, 'seed'), { recursive: true });
    await fs.mkdir(root, { recursive: true, mode: 0o755 });
    await fs.writeFile(path.join(dir, 'seed', 'user-data'), req.seed.userData, { mode: 0o600 });
    await fs.writeFile(path.join(dir, 'seed', 'meta-data'), req.seed.metaData);

    const userData = parseUserData(req.seed.userData);
    for (const f of userData.write_files ?? []) {
      const target = path.join(root, path.resolve('/', f.path));
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.writeFile(target, f.content, { mode: f.permissions ? parseInt(f.permissions, 8) : 0o644 });
    }
    // Started early: its GET runs while the seed is written.
    const runner = this.runners?.current();
    const script = (userData.runcmd ?? [])
      .map((c) => (typeof c === 'string' ? c : c.map(shellQuote).join(' ')))
      .join('\n');

    const env: NodeJS.ProcessEnv = {
      // The worker's own node goes first so the runner runs on a known Node version.
      PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? '/usr/bin:/bin'}`,
      SOLSTICE_ROOT: root,
      [MACHINE_TAG_ENV]: this.tagOf(machineId),
    };
    for (const k of PASSED_ENV) if (process.env[k] !== undefined) env[k] = process.env[k];
    const verified = await runner;
    if (verified) {
      // The very bytes that were hashed, so what runs is what was verified.
      const target = path.join(root, RUNNER_PATH);
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.writeFile(target, verified.body, { mode: 0o644 });
      await fs.writeFile(path.join(root, RUNNER_LOADER_PATH), RUNNER_LOADER_SOURCE, { mode: 0o644 });
      env[RUNNER_SHA256_ENV] = verified.sha256;
      // Per bundle and Node version: V8 would reject any other (the machine runs this node).
      env[RUNNER_CODE_CACHE_ENV] = this.runners!.codeCacheFile(verified.sha256, process.version);
    }
    if (this.opts.hostCache) env[GIT_CACHE_ENV] = hostGitCacheDir(this.opts.hostCache.dir);

    const consoleFd = openSync(
      path.join(dir, 'console.log'),
      fsConstants.O_CREAT | fsConstants.O_APPEND | fsConstants.O_WRONLY,
    );
    try {
      // Detached: the machine outlives the worker that made it, as a VM would.
      const child = spawn('/bin/sh', ['-c', `set -e\n${script}`], {
        cwd: root,
        env,
        detached: true,
        stdio: ['ignore', consoleFd, consoleFd],
      });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', (err) =>
          reject(new ProvisioningError(`could not start ${machineId}: ${err.message}`)),
        );
      });
      handle.details.pid = child.pid ?? null;
      child.unref();
    } finally {
      closeSync(consoleFd);
    }
    return handle;
  }

  async destroy(handle: MachineHandle): Promise<void> {
    await killTagged(this.tagOf(handle.machineId), this.opts.killGraceMs ?? 5000);
    await fs.rm(this.dirOf(handle.machineId), { recursive: true, force: true });
  }

  async consoleTail(handle: MachineHandle, maxBytes: number): Promise<string> {
    return readTail(path.join(this.dirOf(handle.machineId), 'console.log'), maxBytes);
  }
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}

function parseUserData(text: string): UserData {
  if (!text.startsWith('#cloud-config')) throw new ProvisioningError('user-data is not #cloud-config');
  const parsed: unknown = YAML.parse(text);
  if (typeof parsed !== 'object' || parsed === null) throw new ProvisioningError('user-data is empty');
  return parsed as UserData;
}
