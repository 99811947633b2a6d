import { planGrants, queuePositions, type HostCapacity } from '../../../capacity/plan';

const host = (id: string, maxMachines: number, labels = ['debian-12', 'local']): HostCapacity => ({
  id,
  labels,
  maxMachines,
});
const req = (jobId: string, label = 'debian-12') => ({ jobId, label });

describe('planGrants', () => {
  test('a label at its limit waits, first come first served', () => {
    const grants = planGrants({
      waiting: [req('a'), req('b'), req('c')],
      hosts: [host('h1', 8)],
      held: [],
      labelLimits: { 'debian-12': 2 },
    });
    expect(grants).toEqual([
      { jobId: 'a', hostId: 'h1' },
      { jobId: 'b', hostId: 'h1' },
    ]);
  });

  test('held leases count against the label and the host', () => {
    expect(
      planGrants({
        waiting: [req('b')],
        hosts: [host('h1', 8)],
        held: [{ label: 'debian-12', hostId: 'h1' }],
        labelLimits: { 'debian-12': 1 },
      }),
    ).toEqual([]);
    expect(
      planGrants({
        waiting: [req('b', 'local')],
        hosts: [host('h1', 1)],
        held: [{ label: 'debian-12', hostId: 'h1' }],
        labelLimits: {},
      }),
    ).toEqual([]);
  });

  test('a full label does not hold up other labels', () => {
    expect(
      planGrants({
        waiting: [req('a'), req('b', 'local')],
        hosts: [host('h1', 8)],
        held: [{ label: 'debian-12', hostId: 'h1' }],
        labelLimits: { 'debian-12': 1 },
      }),
    ).toEqual([{ jobId: 'b', hostId: 'h1' }]);
  });

  test('jobs spread over hosts by load and never exceed a host limit', () => {
    const grants = planGrants({
      waiting: ['a', 'b', 'c', 'd', 'e', 'f'].map((j) => req(j)),
      hosts: [host('h2', 2), host('h1', 2)],
      held: [],
      labelLimits: {},
    });
    expect(grants).toEqual([
      { jobId: 'a', hostId: 'h1' },
      { jobId: 'b', hostId: 'h2' },
      { jobId: 'c', hostId: 'h1' },
      { jobId: 'd', hostId: 'h2' },
    ]);
  });

  test('only hosts serving the label are used', () => {
    expect(
      planGrants({
        waiting: [req('a'), req('b', 'local')],
        hosts: [host('vm', 4, ['debian-12']), host('proc', 4, ['local'])],
        held: [],
        labelLimits: {},
      }),
    ).toEqual([
      { jobId: 'a', hostId: 'vm' },
      { jobId: 'b', hostId: 'proc' },
    ]);
    expect(planGrants({ waiting: [req('a')], hosts: [], held: [], labelLimits: {} })).toEqual([]);
  });

  test('a limit of zero holds the label', () => {
    expect(
      planGrants({ waiting: [req('a')], hosts: [host('h1', 4)], held: [], labelLimits: { 'debian-12': 0 } }),
    ).toEqual([]);
  });
});

test('queue positions count per label, oldest first', () => {
  const p = queuePositions([req('a'), req('b', 'local'), req('c'), req('d', 'local'), req('e')]);
  expect(Object.fromEntries(p)).toEqual({ a: 1, b: 1, c: 2, d: 2, e: 3 });
});
