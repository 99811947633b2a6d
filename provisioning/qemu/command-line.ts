/**
 * The qemu-system-x86_64 command line of one job VM, as a pure function so tests can check
 * what a guest can reach: user-mode networking with `restrict=on` (nothing leaves the guest)
 * plus one `guestfwd` per service the guest needs, each to 127.0.0.1 on the host.
 *
 * A forward runs a relay per guest connection (`guestfwd=...-cmd:`): the other form, a
 * `tcp:` character device, connects once when QEMU starts and carries only that one
 * connection, which an HTTP server times out long before a TCG guest has booted.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../../platform/errors';
import type { Accel, ImageSpec } from './image-map';

/**
 * A TCP service the guest reaches at guestAddr:guestPort, forwarded to 127.0.0.1:hostPort, or
 * to the port named in `hostPortFile` when the guest connects: a forward must exist when QEMU
 * starts, and a warm-pool VM's repository is known only when a job claims it.
 */
export type GuestForward = { guestAddr: string; guestPort: number } & (
  { hostPort: number } | { hostPortFile: string }
);

export interface VmFiles {
  overlay: string;
  seedIso: string;
  console: string;
  /**
   * QMP's unix socket, in Linux's abstract namespace (a name starting with NUL, no file):
   * a socket path is limited to 107 bytes, and a machine folder under a deep workspace root
   * with its installation and host in its name passes that easily. Named after the folder,
   * so it is as unique as the folder.
   */
  qmpSocket: string;
  pidFile: string;
  relay: string;
  /** The port of the VM's `git daemon`, which its repository forward relays to (absent: none yet). */
  gitPort: string;
}

/**
 * The relay QEMU starts for each guest connection of a forward: its stdin/stdout is the
 * guest's connection, which it joins to 127.0.0.1:<port>, or to the port written in a file
 * (`@<file>`, read at each connection; no file: the connection is closed, as if refused).
 * Plain JavaScript, written into the VM's folder, run by the worker's own Node.
 */
export const RELAY_SOURCE = `'use strict';
// Solstice CI guestfwd relay: stdin/stdout (the guest connection) <-> 127.0.0.1:<port>.
const fs = require('node:fs');
const net = require('node:net');
const spec = process.argv[3] || '';
let port = Number(spec);
if (spec.startsWith('@')) {
  try {
    port = Number(fs.readFileSync(spec.slice(1), 'utf8').trim());
  } catch {
    process.exit(1);
  }
}
if (process.argv[2] !== '127.0.0.1' || !(port > 0 && port < 65536)) process.exit(2);
const upstream = net.connect(port, '127.0.0.1');
process.stdin.pipe(upstream);
upstream.pipe(process.stdout);
upstream.on('error', () => process.exit(1));
upstream.on('close', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
`;

/**
 * The `git daemon` arguments of a VM's repository forward: one repository, read-only, on
 * 127.0.0.1 only (the forward's relay is its one client). Tests of the checkout run this daemon.
 */
export function gitDaemonArgs(port: number, repo: string): string[] {
  return [
    'daemon',
    '--listen=127.0.0.1',
    `--port=${port}`,
    '--reuseaddr',
    '--export-all',
    `--base-path=${repo}`,
    '--informative-errors',
  ];
}

export function vmFiles(dir: string): VmFiles {
  return {
    overlay: path.join(dir, 'overlay.qcow2'),
    seedIso: path.join(dir, 'seed.iso'),
    console: path.join(dir, 'console.log'),
    qmpSocket: `\0solstice-qmp-${createHash('sha256').update(path.resolve(dir)).digest('hex').slice(0, 32)}`,
    pidFile: path.join(dir, 'qemu.pid'),
    relay: path.join(dir, 'relay.js'),
    gitPort: path.join(dir, 'git-daemon.port'),
  };
}

/** kvm only when /dev/kvm is usable and the CPU has hardware virtualisation (vmx/svm). */
export function resolveAccel(
  wanted: Accel,
  probe: { kvmUsable: () => boolean; cpuFlags: () => string } = hostProbe,
): 'kvm' | 'tcg' {
  if (wanted !== 'auto') return wanted;
  return probe.kvmUsable() && /\b(vmx|svm)\b/.test(probe.cpuFlags()) ? 'kvm' : 'tcg';
}

const hostProbe = {
  kvmUsable(): boolean {
    try {
      fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
      return true;
    } catch {
      return false;
    }
  },
  cpuFlags(): string {
    try {
      return fs.readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      return '';
    }
  },
};

// QEMU splits option values on commas; a path containing one would change the meaning.
function safePath(p: string): string {
  if (p.includes(',')) throw new ConfigError(`QEMU cannot take paths with commas: ${p}`);
  return p;
}

export function qemuArgs(opts: {
  /** The VM's name (provisioning/machine-name.ts: it names installation, host and machine). */
  name: string;
  image: ImageSpec;
  accel: 'kvm' | 'tcg';
  files: VmFiles;
  forwards: GuestForward[];
  /** The Node.js that runs the relay. */
  node: string;
}): string[] {
  const { image, files } = opts;
  const ports = opts.forwards.map((f) => ('hostPort' in f ? String(f.hostPort) : `@${f.hostPortFile}`));
  for (const p of [opts.node, files.relay, ...ports])
    if (/\s/.test(p))
      throw new ConfigError(`QEMU's guestfwd cannot run a command from a path with spaces: ${p}`);
  const relay = `${safePath(opts.node)} ${safePath(files.relay)}`;
  const netdev = [
    'user',
    'id=n0',
    // Nothing leaves the guest except the explicit forwards below.
    'restrict=on',
    ...opts.forwards.map(
      (f, i) => `guestfwd=tcp:${f.guestAddr}:${f.guestPort}-cmd:${relay} 127.0.0.1 ${safePath(ports[i])}`,
    ),
  ].join(',');
  return [
    '-name',
    `${opts.name},process=${opts.name}`,
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-accel',
    opts.accel,
    ...(opts.accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-smp',
    String(image.size.cpu),
    '-m',
    String(image.size.memory),
    '-kernel',
    safePath(image.kernel),
    '-initrd',
    safePath(image.initrd),
    '-append',
    image.options.append,
    '-drive',
    `file=${safePath(files.overlay)},format=qcow2,if=virtio`,
    '-drive',
    `file=${safePath(files.seedIso)},format=raw,media=cdrom,if=ide,readonly=on`,
    '-netdev',
    netdev,
    '-device',
    'virtio-net-pci,netdev=n0',
    // Without entropy a fresh guest can stall in early boot (crng init) under TCG.
    '-device',
    'virtio-rng-pci',
    '-chardev',
    `file,id=console,path=${safePath(files.console)}`,
    '-serial',
    'chardev:console',
    '-qmp',
    // tight=off: QEMU binds the whole sun_path, the address length Node connects with.
    `unix:${safePath(files.qmpSocket.replace(/^\0/, ''))},server=on,wait=off,abstract=on,tight=off`,
    '-pidfile',
    safePath(files.pidFile),
    // A guest that reboots (or panics into a reboot) is finished: let the process end.
    '-no-reboot',
  ];
}
