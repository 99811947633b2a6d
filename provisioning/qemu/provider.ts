/**
 * The `qemu` provider: every job attempt is a fresh VM from a read-only base image.
 *
 *   <workspace>/<machine id>/
 *     machine.json   who made it (provider, host, job, attempt)
 *     overlay.qcow2  copy-on-write layer over the image's base.qcow2
 *     seed.iso       NoCloud seed (volume cidata: user-data, meta-data), an IDE CD-ROM
 *     console.log    the serial console (ttyS0)
 *   and QMP, for a graceful power-down, on an abstract unix socket named after the folder
 *
 * The guest reaches the host only through user-mode networking with `restrict=on` and one
 * forward per service: the runner server, the log service, the OTLP receiver for the runner's
 * spans (when that is on 127.0.0.1), and (for a repository that is a local path) a read-only
 * `git daemon` serving that one repository. The repository forward relays to the port in the
 * VM's `git-daemon.port`, read at each guest connection: a cold VM's is written before QEMU
 * starts, a warm-pool VM's when a job claims it (`attachRepository`), by the same code. Every
 * process the VM needs (qemu, the relays, git daemon) carries the machine's tag in its
 * environment, so destroy and the sweeper find them from any process on this host.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { closeSync, constants as fsConstants, createReadStream, openSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ConfigError, MissingToolError, ProvisioningError } from '../../platform/errors';
import { ChildProcessError, runBounded } from '../../platform/child-process';
import { freePort, isLoopbackHost, splitHostPort } from '../../platform/net';
import type { MachineHandle } from '../../model/domain';
import { readTail } from '../file-tail';
import { requestedMachineId, type GuestEndpoints, type MachineRequest, type Provider } from '../contract';
import { killTagged, MACHINE_TAG_ENV, taggedPids } from '../process-tree';
import { machineFolderName, machineTag, vmName, type MachineOwner } from '../machine-name';
import {
  gitDaemonArgs,
  qemuArgs,
  RELAY_SOURCE,
  resolveAccel,
  vmFiles,
  type GuestForward,
} from './command-line';
import { imageForLabel, knownLabels, type Accel, type ImageMap, type ImageSpec } from './image-map';
import { QmpClient } from './qmp';
import { localRepoPath } from '../../model/repo-url';

/** Where the guest sees the host's services (inside QEMU's 10.0.2.0/24 user network). */
export const GUEST_RUNNER_ADDR = '10.0.2.100';
export const GUEST_CONTACT_ADDR = '10.0.2.101';
export const GUEST_GIT_ADDR = '10.0.2.102';
export const GUEST_OTLP_ADDR = '10.0.2.103';
const GIT_PORT = 9418;

export interface QemuProviderOptions {
  workspaceRoot: string;
  owner: MachineOwner;
  imageMap: ImageMap;
  /** Default for images whose options name no accel. */
  accel: Accel;
  /** Host-side addresses of the runner server and log service; both must be on 127.0.0.1. */
  runnerUrl: string;
  contactAddr: string;
  /**
   * Host-side OTLP/gRPC endpoint for the runners' spans. Forwarded into the VMs when it is on
   * 127.0.0.1; anywhere else a restricted guest cannot reach it, and runners export no spans.
   */
  otlpEndpoint?: string;
  qemuBinary?: string;
  /** How long a guest may take to power off after ACPI power-down before SIGTERM. */
  powerdownGraceMs?: number;
  killGraceMs?: number;
}

export interface MachineRecordFile {
  provider: string;
  machineId: string;
  hostId: string;
  jobId: string;
  attempt: number;
  image: string;
  createdAt: string;
}

function loopbackPort(what: string, host: string, port: number): number {
  if (!isLoopbackHost(host) || !port)
    throw new ConfigError(
      `${what} is ${host}:${port}, but QEMU user-mode networking forwards guests only to 127.0.0.1`,
      'listen on 127.0.0.1 (e.g. SOLSTICE_RUNNER_SERVE_ADDR=127.0.0.1:8088), or use bridged networking (docs/qemu.md)',
    );
  return port;
}

export class QemuProvider implements Provider {
  readonly name = 'qemu';
  readonly setupWarnings: string[] = [];
  private readonly runnerPort: number;
  private readonly contactPort: number;
  /** The forwarded OTLP receiver: its scheme and port. */
  private readonly otlp: { protocol: string; port: number } | undefined;
  private readonly fetching = new Map<string, Promise<void>>();

  constructor(private readonly opts: QemuProviderOptions) {
    const runner = new URL(opts.runnerUrl);
    this.runnerPort = loopbackPort(
      'the runner URL',
      runner.hostname,
      Number(runner.port || (runner.protocol === 'https:' ? 443 : 80)),
    );
    const contact = splitHostPort(opts.contactAddr, 'the log service contact address');
    this.contactPort = loopbackPort('the log service contact address', contact.host, contact.port);
    const otlp = opts.otlpEndpoint ? new URL(opts.otlpEndpoint) : undefined;
    if (otlp && isLoopbackHost(otlp.hostname))
      this.otlp = {
        protocol: otlp.protocol,
        port: Number(otlp.port || (otlp.protocol === 'https:' ? 443 : 80)),
      };
    else if (otlp)
      this.setupWarnings.push(
        `runners in VMs cannot reach the OTLP endpoint ${opts.otlpEndpoint} (guests are forwarded to 127.0.0.1 only) and export no spans; run a collector on 127.0.0.1 that forwards to it and set SOLSTICE_RUNNER_OTLP_ENDPOINT to that`,
      );
  }

  labels(): string[] {
    return knownLabels(this.opts.imageMap);
  }

  private dirOf(machineId: string): string {
    return path.join(this.opts.workspaceRoot, machineFolderName(this.opts.owner, machineId));
  }

  private tagOf(machineId: string): string {
    return machineTag(this.opts.owner, machineId);
  }

  private imageFor(label: string): ImageSpec {
    const map = this.opts.imageMap;
    const image = imageForLabel(map, label === 'local' ? map.defaultLabel : label);
    if (!image)
      throw new ConfigError(`no image for label "${label}"; known labels: ${knownLabels(map).join(', ')}`);
    return image;
  }

  guestEndpoints(host: GuestEndpoints): GuestEndpoints {
    const runner = new URL(host.runnerUrl);
    runner.hostname = GUEST_RUNNER_ADDR;
    runner.port = String(this.runnerPort);
    return {
      runnerUrl: runner.toString(),
      contactAddr: `${GUEST_CONTACT_ADDR}:${this.contactPort}`,
      repoUrl: localRepoPath(host.repoUrl) ? `git://${GUEST_GIT_ADDR}:${GIT_PORT}/` : host.repoUrl,
      ...(this.otlp ? { otlpEndpoint: `${this.otlp.protocol}//${GUEST_OTLP_ADDR}:${this.otlp.port}` } : {}),
    };
  }

  async create(req: MachineRequest): Promise<MachineHandle> {
    const machineId = requestedMachineId(req);
    const image = this.imageFor(req.label);
    const accel = resolveAccel(image.options.accel ?? this.opts.accel);
    const dir = this.dirOf(machineId);
    const files = vmFiles(dir);
    const handle: MachineHandle = {
      machineId,
      provider: this.name,
      hostId: this.opts.owner.hostId,
      details: { dir, image: image.name, accel },
    };
    // A retried create (the previous worker died half-way) starts from nothing.
    await this.destroy(handle);
    await this.ensureImage(image);

    // A VM that cannot start leaves nothing: no QEMU, no git daemon, no folder. The error
    // already carries what QEMU said.
    try {
      await fs.mkdir(path.join(dir, 'seed'), { recursive: true });
      const record: MachineRecordFile = {
        provider: this.name,
        machineId,
        hostId: this.opts.owner.hostId,
        jobId: req.jobId,
        attempt: req.attempt,
        image: image.name,
        createdAt: new Date().toISOString(),
      };
      await fs.writeFile(path.join(dir, 'machine.json'), JSON.stringify(record, null, 2));
      await fs.writeFile(path.join(dir, 'seed', 'user-data'), req.seed.userData, { mode: 0o600 });
      await fs.writeFile(path.join(dir, 'seed', 'meta-data'), req.seed.metaData);
      await runTool(
        'cloud-localds',
        [files.seedIso, path.join(dir, 'seed', 'user-data'), path.join(dir, 'seed', 'meta-data')],
        'cloud-image-utils',
      );
      // The seed holds the job token: once on the ISO, the plain copies go.
      await fs.rm(path.join(dir, 'seed'), { recursive: true, force: true });
      // The backing path is resolved so a rebuilt image (the name's symlink moves) never
      // changes the disk under a running VM.
      const base = await fs.realpath(image.base);
      await runTool(
        'qemu-img',
        ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', files.overlay],
        'qemu-utils',
      );

      const forwards: GuestForward[] = [
        { guestAddr: GUEST_RUNNER_ADDR, guestPort: this.runnerPort, hostPort: this.runnerPort },
        { guestAddr: GUEST_CONTACT_ADDR, guestPort: this.contactPort, hostPort: this.contactPort },
      ];
      if (this.otlp)
        forwards.push({ guestAddr: GUEST_OTLP_ADDR, guestPort: this.otlp.port, hostPort: this.otlp.port });
      const repo = localRepoPath(req.repoUrl);
      // A pool VM (no job yet) gets the forward too; a job's repository is attached at its claim.
      if (repo || req.jobId === '') {
        forwards.push({ guestAddr: GUEST_GIT_ADDR, guestPort: GIT_PORT, hostPortFile: files.gitPort });
        handle.details.repoForward = true;
      }
      if (repo) await this.serveRepository(machineId, repo);

      await fs.writeFile(files.relay, RELAY_SOURCE);
      const args = qemuArgs({
        name: vmName(this.opts.owner, machineId),
        image,
        accel,
        files,
        forwards,
        node: process.execPath,
      });
      const pid = await this.spawnTagged(
        machineId,
        this.opts.qemuBinary ?? 'qemu-system-x86_64',
        args,
        'qemu.log',
      );
      handle.details.pid = pid;
      await this.waitStarted(machineId, files.qmpSocket);
    } catch (err) {
      await this.destroy(handle).catch(() => undefined);
      throw err;
    }
    return handle;
  }

  /**
   * Makes a host-folder repository reachable from a VM booted without one (a warm-pool VM, as a
   * job claims it), at the address guestEndpoints gave the job. Any other URL the guest reaches
   * as is.
   */
  async attachRepository(handle: MachineHandle, repoUrl: string): Promise<void> {
    const repo = localRepoPath(repoUrl);
    if (!repo) return;
    if (handle.details.repoForward !== true)
      throw new ProvisioningError(
        `VM ${handle.machineId} was booted without a repository forward, so it cannot fetch ${repo}`,
        'it is recycled by its pool (max_idle_age); jobs boot cold meanwhile',
      );
    await this.serveRepository(handle.machineId, repo);
  }

  /**
   * A read-only git daemon for one repository, for this VM only (killed with it), and the VM's
   * repository forward pointed at it. Returns once it accepts connections: a warm VM's runner
   * fetches within a second of its claim.
   */
  private async serveRepository(machineId: string, repo: string): Promise<void> {
    const port = await freePort();
    const pid = await this.spawnTagged(machineId, 'git', gitDaemonArgs(port, repo), 'git-daemon.log');
    const deadline = Date.now() + 15_000;
    while (!(await accepts(port))) {
      const alive = (await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')) !== '';
      if (!alive || Date.now() > deadline) {
        const log = await readTail(path.join(this.dirOf(machineId), 'git-daemon.log'), 2000);
        throw new ProvisioningError(
          `git daemon for ${machineId} ${alive ? 'did not listen in time' : 'exited at start'}: ${log.trim() || '(no output)'}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    // Renamed into place: a relay starting meanwhile reads the old port or the new one, never half.
    const file = vmFiles(this.dirOf(machineId)).gitPort;
    await fs.writeFile(`${file}.tmp`, String(port));
    await fs.rename(`${file}.tmp`, file);
  }

  private async spawnTagged(
    machineId: string,
    cmd: string,
    args: string[],
    logName: string,
  ): Promise<number> {
    const logFd = openSync(
      path.join(this.dirOf(machineId), logName),
      fsConstants.O_CREAT | fsConstants.O_APPEND | fsConstants.O_WRONLY,
    );
    try {
      // Detached: the VM outlives the worker that made it; destroy finds it by its tag.
      const child = spawn(cmd, args, {
        cwd: this.dirOf(machineId),
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', [MACHINE_TAG_ENV]: this.tagOf(machineId) },
        detached: true,
        stdio: ['ignore', logFd, logFd],
      });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', (err) =>
          reject(
            (err as NodeJS.ErrnoException).code === 'ENOENT'
              ? new MissingToolError(`${cmd} is not installed`, 'Debian: apt-get install qemu-system-x86 git')
              : new ProvisioningError(`could not start ${cmd} for ${machineId}: ${err.message}`),
          ),
        );
      });
      child.unref();
      return child.pid ?? 0;
    } finally {
      closeSync(logFd);
    }
  }

  /** Until QEMU answers on QMP; an early exit (bad image, bad option) fails with its stderr. */
  private async waitStarted(machineId: string, qmpSocket: string): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const client = await QmpClient.connect(qmpSocket, 2000).catch(() => undefined);
      if (client) {
        client.close();
        return;
      }
      const alive = (await taggedPids(this.tagOf(machineId))).length > 0;
      if (!alive || Date.now() > deadline) {
        const stderr = await readTail(path.join(this.dirOf(machineId), 'qemu.log'), 2000);
        throw new ProvisioningError(
          `QEMU for ${machineId} ${alive ? 'did not open its QMP socket in time' : 'exited at start'}: ${stderr.trim() || '(no output)'}`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** The base image exists, or is fetched from its source and checked against its checksum. */
  private async ensureImage(image: ImageSpec): Promise<void> {
    const exists = async (p: string) =>
      fs.access(p).then(
        () => true,
        () => false,
      );
    for (const [what, p] of [
      ['kernel', image.kernel],
      ['initrd', image.initrd],
    ] as const) {
      if (!(await exists(p)))
        throw new ConfigError(
          `the ${what} of image "${image.name}" is missing: ${p}`,
          'build it with infra/images/build.sh or fix the image map',
        );
    }
    if (await exists(image.base)) return;
    if (!image.source)
      throw new ConfigError(
        `the base image of "${image.name}" is missing: ${image.base}`,
        'build it with infra/images/build.sh, or give the image a source in the image map',
      );
    let pending = this.fetching.get(image.name);
    if (!pending) {
      pending = fetchImage(image).finally(() => this.fetching.delete(image.name));
      this.fetching.set(image.name, pending);
    }
    await pending;
  }

  async destroy(handle: MachineHandle): Promise<void> {
    const tag = this.tagOf(handle.machineId);
    const files = vmFiles(this.dirOf(handle.machineId));
    if ((await taggedPids(tag)).length > 0) await this.powerdown(tag, files.qmpSocket);
    await killTagged(tag, this.opts.killGraceMs ?? 5000);
    await fs.rm(this.dirOf(handle.machineId), { recursive: true, force: true });
  }

  /** Asks the guest to power off (ACPI) and waits a little; the caller kills what is left. */
  private async powerdown(tag: string, qmpSocket: string): Promise<void> {
    const client = await QmpClient.connect(qmpSocket, 2000).catch(() => undefined);
    if (!client) return;
    try {
      await client.execute('system_powerdown');
    } catch {
      return;
    } finally {
      client.close();
    }
    const deadline = Date.now() + (this.opts.powerdownGraceMs ?? 10_000);
    while (Date.now() < deadline) {
      const qemuLeft = await qemuPids(tag);
      if (qemuLeft.length === 0) return;
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async consoleTail(handle: MachineHandle, maxBytes: number): Promise<string> {
    return readTail(path.join(this.dirOf(handle.machineId), 'console.log'), maxBytes);
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The tagged processes that are QEMU (not the VM's git daemon). */
async function qemuPids(tag: string): Promise<number[]> {
  const pids = await taggedPids(tag);
  const out: number[] = [];
  for (const pid of pids) {
    const comm = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (comm.includes('qemu-system')) out.push(pid);
  }
  return out;
}

/**
 * How long a disk or seed tool may take: both write a few KiB (an overlay, a tiny ISO); one
 * that hangs (a stuck mount, a locked image) must fail the attempt, not hold the activity.
 */
export const TOOL_TIMEOUT_MS = 60_000;

/** Runs a host tool the VM needs, in its own process group, killed with it at the timeout. */
export async function runTool(
  cmd: string,
  args: string[],
  pkg: string,
  timeoutMs = TOOL_TIMEOUT_MS,
): Promise<void> {
  try {
    await runBounded(cmd, args, { timeoutMs, maxOutputBytes: 1024 * 1024 });
  } catch (err) {
    if (!(err instanceof ChildProcessError)) throw err;
    if (err.reason === 'spawn' && /ENOENT/.test(err.message))
      throw new MissingToolError(`${cmd} is not installed`, `Debian: apt-get install ${pkg}`);
    const why = err.reason === 'exit' ? err.stderr.trim() || err.message : err.message;
    throw new ProvisioningError(`${cmd} failed: ${why}`);
  }
}

async function fetchImage(image: ImageSpec): Promise<void> {
  const source = image.source as string;
  const part = `${image.base}.part-${process.pid}`;
  await fs.mkdir(path.dirname(image.base), { recursive: true });
  try {
    if (/^https?:\/\//.test(source)) {
      const res = await fetch(source);
      if (!res.ok || !res.body) throw new ProvisioningError(`fetching ${source} answered ${res.status}`);
      await pipeline(
        Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
        (await fs.open(part, 'w')).createWriteStream(),
      );
    } else {
      await fs.copyFile(source.replace(/^file:\/\//, ''), part);
    }
    if (image.checksum) {
      const hash = createHash('sha256');
      await pipeline(createReadStream(part), hash);
      const got = `sha256:${hash.digest('hex')}`;
      if (got !== image.checksum)
        throw new ConfigError(
          `image "${image.name}" from ${source} has checksum ${got}, the image map says ${image.checksum}`,
        );
    }
    await fs.chmod(part, 0o444);
    await fs.rename(part, image.base);
  } finally {
    await fs.rm(part, { force: true });
  }
}
