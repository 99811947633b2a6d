import {
  planGrants,
  poolRoom,
  type HostCapacity,
  type PlanInput,
  type PoolSlot,
} from '../../../capacity/plan';
import { parsePools, formatPools } from '../../../capacity/pool-spec';
import { newSealKeyPair, open, seal } from '../../../model/sealed-box';
import { parseImageMap, poolsOf } from '../../../provisioning/qemu/image-map';
import { BOOTSTRAP_PATH, POOL_FILE_PATH, renderPoolSeed } from '../../../provisioning/cloud-init';
import YAML from 'yaml';

const host = (id: string, maxMachines: number, labels = ['debian-12', 'local']): HostCapacity => ({
  id,
  labels,
  maxMachines,
});
const req = (jobId: string, label = 'debian-12') => ({ jobId, label });
const slot = (id: string, hostId: string, label = 'debian-12', idle = true): PoolSlot => ({
  id,
  hostId,
  label,
  idle,
});

describe('warm pools in the capacity plan', () => {
  test('a job takes over an idle machine of its label, even on a host that idle machines fill', () => {
    const input: PlanInput = {
      waiting: [req('a'), req('b')],
      hosts: [host('h1', 1)],
      held: [],
      labelLimits: { 'debian-12': 1 },
      pool: [slot('pool-1', 'h1')],
    };
    // The second job waits: the one slot (host and label) passed from the machine to the first.
    expect(planGrants(input)).toEqual([{ jobId: 'a', hostId: 'h1', poolMachineId: 'pool-1' }]);
  });

  test('booting and other-label pool machines hold slots but cannot be taken over', () => {
    expect(
      planGrants({
        waiting: [req('a')],
        hosts: [host('h1', 2)],
        held: [],
        labelLimits: {},
        pool: [slot('pool-1', 'h1', 'debian-12', false), slot('pool-2', 'h1', 'local')],
      }),
    ).toEqual([]);
  });

  test('an idle machine is preferred over a free slot elsewhere', () => {
    expect(
      planGrants({
        waiting: [req('a')],
        hosts: [host('h1', 4), host('h2', 4)],
        held: [],
        labelLimits: {},
        pool: [slot('pool-9', 'h2')],
      }),
    ).toEqual([{ jobId: 'a', hostId: 'h2', poolMachineId: 'pool-9' }]);
  });

  test('queued jobs come before refills; a full host with a queue evicts an idle machine', () => {
    const base = { hosts: [host('h1', 2)], labelLimits: {} };
    // Room: nothing waits and a slot is free.
    expect(poolRoom({ ...base, waiting: [], held: [], pool: [] }, [], 'h1', 'debian-12')).toBe('room');
    // A local job waits behind two idle debian-12 machines on a full host: one must go.
    const crowded: PlanInput = {
      ...base,
      waiting: [req('a', 'local')],
      held: [],
      pool: [slot('p1', 'h1'), slot('p2', 'h1')],
    };
    expect(planGrants(crowded)).toEqual([]);
    expect(poolRoom(crowded, [], 'h1', 'debian-12')).toBe('evict');
    // A label at its limit gets no refill.
    expect(
      poolRoom(
        {
          ...base,
          labelLimits: { 'debian-12': 1 },
          waiting: [],
          held: [{ label: 'debian-12', hostId: 'h1' }],
        },
        [],
        'h1',
        'debian-12',
      ),
    ).toBe('full');
  });
});

describe('pool settings', () => {
  test('SOLSTICE_POOLS reads min, max and age; max defaults to min', () => {
    const pools = parsePools('debian-12=1/3/10m, local=2');
    expect(pools).toEqual({
      'debian-12': { minIdle: 1, maxIdle: 3, maxIdleAgeMs: 600_000 },
      local: { minIdle: 2, maxIdle: 2, maxIdleAgeMs: 1_800_000 },
    });
    expect(parsePools(formatPools(pools))).toEqual(pools);
    expect(() => parsePools('local=2/1')).toThrow('max_idle (1) is below min_idle (2)');
    expect(() => parsePools('local')).toThrow('must be <label>=<min_idle>');
  });

  test('the image map gives an image a pool', () => {
    const map = parseImageMap(
      [
        'images:',
        '  debian-12:',
        '    base: d.qcow2',
        '    kernel: vmlinuz',
        '    initrd: initrd',
        '    pool: { min_idle: 1, max_idle: 2, max_idle_age: 15m }',
        '  plain:',
        '    base: p.qcow2',
        '    kernel: vmlinuz',
        '    initrd: initrd',
      ].join('\n'),
      '/images',
    );
    expect(poolsOf(map)).toEqual({ 'debian-12': { minIdle: 1, maxIdle: 2, maxIdleAgeMs: 900_000 } });
    expect(() =>
      parseImageMap(
        'images:\n  x:\n    base: b\n    kernel: k\n    initrd: i\n    pool: { min_idle: 3, max_idle: 1 }\n',
        '/',
      ),
    ).toThrow('image "x"');
  });
});

describe('sealed assignments', () => {
  test('only the runner that made the key opens its job file, and a changed box is refused', () => {
    const runner = newSealKeyPair();
    const other = newSealKeyPair();
    const box = seal(runner.publicKey, 'token: abc\nsecrets:\n  X: y\n');
    expect(box).not.toContain('abc');
    expect(open(runner.privateKey, box)).toBe('token: abc\nsecrets:\n  X: y\n');
    expect(() => open(other.privateKey, box)).toThrow();
    const parsed = JSON.parse(box) as { ct: string };
    const flipped = Buffer.from(parsed.ct, 'base64');
    flipped[0] ^= 1;
    expect(() =>
      open(runner.privateKey, JSON.stringify({ ...parsed, ct: flipped.toString('base64') })),
    ).toThrow();
  });
});

describe('a pool machine seed', () => {
  test('holds the pool token and no job, job token or secret', () => {
    const seed = renderPoolSeed({
      machineId: 'pool-00000000-0000-0000-0000-000000000001',
      label: 'debian-12',
      poolToken: 'the-pool-token',
      runnerUrl: 'http://10.0.2.100:1/runner.js',
      contactAddr: '10.0.2.101:2',
      hostId: 'h1',
    });
    const userData = YAML.parse(seed.userData) as { write_files: { path: string; content: string }[] };
    expect(userData.write_files.map((f) => f.path)).toEqual([POOL_FILE_PATH, BOOTSTRAP_PATH]);
    expect(YAML.parse(userData.write_files[0].content)).toEqual({
      machine_id: 'pool-00000000-0000-0000-0000-000000000001',
      label: 'debian-12',
      pool_token: 'the-pool-token',
      contact_addr: '10.0.2.101:2',
    });
    const bootstrap = userData.write_files[1].content;
    expect(bootstrap).toContain(`export SOLSTICE_POOL_FILE="$root${POOL_FILE_PATH}"`);
    expect(bootstrap).not.toMatch(/SOLSTICE_JOB_ID|SOLSTICE_COMMIT_SHA|token/i);
  });
});
