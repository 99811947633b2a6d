import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { qemuArgs, RELAY_SOURCE, resolveAccel, vmFiles } from '../../../provisioning/qemu/command-line';
import { parseImageMap } from '../../../provisioning/qemu/image-map';
import { QemuProvider } from '../../../provisioning/qemu/provider';
import { poolMachineId } from '../../../provisioning/contract';
import { machineFolderName } from '../../../provisioning/machine-name';

const map = parseImageMap(
  'images:\n  debian-12: { base: b.qcow2, kernel: vmlinuz, initrd: initrd, size: { cpu: 2, memory: 2048 } }\n',
  '/img',
);
const image = map.images['debian-12'];
const files = vmFiles('/ws/job-1-1');

function optionValues(args: string[], option: string): string[] {
  return args.flatMap((a, i) => (a === option ? [args[i + 1]] : []));
}

test('user-mode networking with restrict=on and forwards only to 127.0.0.1', () => {
  const args = qemuArgs({
    name: 'solstice-i-h-job-1-1',
    image,
    accel: 'tcg',
    files,
    forwards: [
      { guestAddr: '10.0.2.100', guestPort: 8088, hostPort: 8088 },
      { guestAddr: '10.0.2.101', guestPort: 50051, hostPort: 50051 },
      { guestAddr: '10.0.2.102', guestPort: 9418, hostPortFile: files.gitPort },
    ],
    node: '/usr/bin/node',
  });
  const netdevs = optionValues(args, '-netdev');
  expect(netdevs).toHaveLength(1);
  const parts = netdevs[0].split(',');
  expect(parts.slice(0, 3)).toEqual(['user', 'id=n0', 'restrict=on']);
  const fwds = parts.filter((p) => p.startsWith('guestfwd='));
  expect(fwds).toEqual([
    'guestfwd=tcp:10.0.2.100:8088-cmd:/usr/bin/node /ws/job-1-1/relay.js 127.0.0.1 8088',
    'guestfwd=tcp:10.0.2.101:50051-cmd:/usr/bin/node /ws/job-1-1/relay.js 127.0.0.1 50051',
    // The repository's port is read at each connection: a pool VM's is known at its claim.
    'guestfwd=tcp:10.0.2.102:9418-cmd:/usr/bin/node /ws/job-1-1/relay.js 127.0.0.1 @/ws/job-1-1/git-daemon.port',
  ]);
  // Nothing else: no host forwards into the guest, no other network back end.
  expect(parts.filter((p) => !/^(user|id=n0|restrict=on|guestfwd=)/.test(p))).toEqual([]);
  expect(args).not.toContain('-nic');
  expect(args).not.toContain('-net');
  expect(args.join(' ')).not.toMatch(/hostfwd|\btap\b|bridge/);
  expect(args).toContain('-nodefaults');
});

test('the relay joins a guest connection to 127.0.0.1 only, at a port given or read from a file at connect', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-relay-'));
  const relay = path.join(dir, 'relay.js');
  fs.writeFileSync(relay, RELAY_SOURCE);
  const server = net.createServer((c) => c.pipe(c)); // echo
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  // Async: the echo server lives in this process, so the event loop must keep running.
  const relayed = (host: string, input: string, spec = String(port)) =>
    new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [relay, host, spec], {
        stdio: ['pipe', 'pipe', 'ignore'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.once('error', reject);
      child.once('close', (code) => resolve({ code, out }));
      child.stdin.end(input);
    });
  try {
    expect(await relayed('127.0.0.1', 'ping\n')).toEqual({ code: 0, out: 'ping\n' });
    expect(await relayed('192.0.2.1', 'ping\n')).toEqual({ code: 2, out: '' });
    const portFile = path.join(dir, 'git-daemon.port');
    // No port yet (a pool VM before its claim): the guest's connection is just closed.
    expect(await relayed('127.0.0.1', 'ping\n', `@${portFile}`)).toEqual({ code: 1, out: '' });
    fs.writeFileSync(portFile, `${port}\n`);
    expect(await relayed('127.0.0.1', 'ping\n', `@${portFile}`)).toEqual({ code: 0, out: 'ping\n' });
  } finally {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('disks, seed CD-ROM, kernel, size, console, QMP and accel', () => {
  const args = qemuArgs({
    name: 'solstice-i-h-job-1-1',
    image,
    accel: 'tcg',
    files,
    forwards: [],
    node: '/usr/bin/node',
  });
  expect(optionValues(args, '-drive')).toEqual([
    'file=/ws/job-1-1/overlay.qcow2,format=qcow2,if=virtio',
    'file=/ws/job-1-1/seed.iso,format=raw,media=cdrom,if=ide,readonly=on',
  ]);
  expect(optionValues(args, '-kernel')).toEqual(['/img/vmlinuz']);
  expect(optionValues(args, '-append')).toEqual(['root=/dev/vda console=ttyS0 rw']);
  expect(optionValues(args, '-smp')).toEqual(['2']);
  expect(optionValues(args, '-m')).toEqual(['2048']);
  expect(optionValues(args, '-chardev')).toEqual(['file,id=console,path=/ws/job-1-1/console.log']);
  // QMP on an abstract socket named after the folder: no 107-byte path limit, no file to leave.
  expect(optionValues(args, '-qmp')).toEqual([
    expect.stringMatching(/^unix:solstice-qmp-[0-9a-f]{32},server=on,wait=off,abstract=on,tight=off$/),
  ]);
  expect(optionValues(args, '-accel')).toEqual(['tcg']);
  expect(args).not.toContain('-enable-kvm');
  const kvm = qemuArgs({
    name: 'solstice-i-h-job-1-1',
    image,
    accel: 'kvm',
    files,
    forwards: [],
    node: '/usr/bin/node',
  });
  expect(optionValues(kvm, '-accel')).toEqual(['kvm']);
  expect(optionValues(kvm, '-cpu')).toEqual(['host']);
});

test('accel auto picks kvm only with a usable /dev/kvm and vmx or svm', () => {
  const probe = (kvm: boolean, flags: string) => ({ kvmUsable: () => kvm, cpuFlags: () => flags });
  expect(resolveAccel('auto', probe(true, 'flags: fpu sse2 vmx'))).toBe('kvm');
  expect(resolveAccel('auto', probe(true, 'flags: fpu svm'))).toBe('kvm');
  expect(resolveAccel('auto', probe(true, 'flags: fpu sse2'))).toBe('tcg');
  expect(resolveAccel('auto', probe(false, 'flags: vmx'))).toBe('tcg');
  expect(resolveAccel('tcg', probe(true, 'vmx'))).toBe('tcg');
  expect(resolveAccel('kvm', probe(false, ''))).toBe('kvm');
});

/** A provider on this host's usual addresses; `extra` changes some. */
const qemuProvider = (extra: Partial<ConstructorParameters<typeof QemuProvider>[0]> = {}) =>
  new QemuProvider({
    workspaceRoot: '/ws',
    owner: { installationId: 'i', hostId: 'h' },
    imageMap: map,
    accel: 'tcg',
    runnerUrl: 'http://127.0.0.1:8088/runner.js',
    contactAddr: '127.0.0.1:50051',
    ...extra,
  });

test('the guest reaches the runner server, log service and a local repository through the forwards', () => {
  const provider = qemuProvider();
  expect(
    provider.guestEndpoints({
      runnerUrl: 'http://127.0.0.1:8088/runner.js',
      contactAddr: '127.0.0.1:50051',
      repoUrl: '/srv/repos/app',
    }),
  ).toEqual({
    runnerUrl: 'http://10.0.2.100:8088/runner.js',
    contactAddr: '10.0.2.101:50051',
    repoUrl: 'git://10.0.2.102:9418/',
  });
  expect(
    provider.guestEndpoints({
      runnerUrl: 'http://127.0.0.1:8088/runner.js',
      contactAddr: '127.0.0.1:50051',
      repoUrl: 'https://forge.example/o/r.git',
    }).repoUrl,
  ).toBe('https://forge.example/o/r.git');
  // No OTLP endpoint configured: the runner gets none.
  expect(
    provider.guestEndpoints({
      runnerUrl: 'http://127.0.0.1:8088/runner.js',
      contactAddr: '127.0.0.1:50051',
      repoUrl: '/srv/repos/app',
    }).otlpEndpoint,
  ).toBeUndefined();
  expect(() => qemuProvider({ runnerUrl: 'http://192.0.2.1:8088/runner.js' })).toThrow(
    /forwards guests only to 127\.0\.0\.1/,
  );
});

test("the runner's OTLP endpoint is forwarded into the VM when it is on 127.0.0.1, and left out otherwise", () => {
  const withOtlp = (otlpEndpoint: string) =>
    qemuProvider({ otlpEndpoint }).guestEndpoints({
      runnerUrl: 'http://127.0.0.1:8088/runner.js',
      contactAddr: '127.0.0.1:50051',
      repoUrl: 'https://forge.example/o/r.git',
      otlpEndpoint,
    }).otlpEndpoint;
  expect(withOtlp('http://127.0.0.1:4317')).toBe('http://10.0.2.103:4317');
  expect(withOtlp('http://localhost:14317/')).toBe('http://10.0.2.103:14317');
  // A restricted guest cannot reach another host: better no endpoint than a runner retrying one.
  expect(withOtlp('http://collector.example:4317')).toBeUndefined();
  // ...and the worker says so at start.
  expect(qemuProvider({ otlpEndpoint: 'http://collector.example:4317' }).setupWarnings).toEqual([
    expect.stringMatching(
      /cannot reach the OTLP endpoint http:\/\/collector\.example:4317.*collector on 127\.0\.0\.1/,
    ),
  ]);
  expect(qemuProvider({ otlpEndpoint: 'http://127.0.0.1:4317' }).setupWarnings).toEqual([]);
});

test('QMP sockets of two machine folders differ, however deep the workspace is', () => {
  const deep = `/${'d'.repeat(200)}`;
  const a = vmFiles(`${deep}/i.h.job-1-1`).qmpSocket;
  const b = vmFiles(`${deep}/i.h.job-1-2`).qmpSocket;
  expect(a).not.toBe(b);
  expect(a.startsWith('\0')).toBe(true);
  expect(Buffer.byteLength(a)).toBeLessThan(108);
});

test('a pool VM gets a host-folder repository at its claim: a git daemon for it, which its forward relays to', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-attach-'));
  const repo = path.join(root, 'repo');
  const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8' });
  git('init', '-q', '-b', 'main', repo);
  git('-C', repo, '-c', 'user.email=t@t', '-c', 'user.name=t', 'commit', '-q', '--allow-empty', '-m', 'x');
  const provider = qemuProvider({ workspaceRoot: path.join(root, 'ws') });
  const machineId = poolMachineId(randomUUID());
  // The folder create() made when it booted the VM.
  const machineDir = path.join(
    root,
    'ws',
    machineFolderName({ installationId: 'i', hostId: 'h' }, machineId),
  );
  fs.mkdirSync(machineDir, { recursive: true });
  const handle = { machineId, provider: 'qemu', hostId: 'h', details: { repoForward: true } };
  try {
    await expect(provider.attachRepository({ ...handle, details: {} }, repo)).rejects.toThrow(
      /booted without a repository forward/,
    );
    await provider.attachRepository(handle, repo);
    const port = fs.readFileSync(vmFiles(machineDir).gitPort, 'utf8');
    expect(git('ls-remote', `git://127.0.0.1:${port}/`)).toMatch(/\trefs\/heads\/main$/m);
    // A URL the guest reaches as is needs nothing.
    await provider.attachRepository(handle, 'https://forge.example/o/r.git');
  } finally {
    await provider.destroy(handle);
    fs.rmSync(root, { recursive: true, force: true });
  }
});
