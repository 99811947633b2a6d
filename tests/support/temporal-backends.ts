/**
 * The harness switch between Temporal backends: the run's dev server (global setup) and a real
 * cluster on PostgreSQL (tests/support/temporal-cluster.ts). Files that must behave the same on
 * both wrap their tests in `describe.each(temporalBackends())` and set up with
 * `harnessWithWorkerOn(backend, ...)`: one cluster per block, stopped after its last test.
 *
 *   SOLSTICE_TEST_TEMPORAL=dev,cluster   (the default: both)
 *   SOLSTICE_TEST_TEMPORAL=dev           (only the dev server, e.g. while iterating)
 *   SOLSTICE_TEST_TEMPORAL=cluster
 */
import { startHarness, type Harness } from './harness';
import { startTestCluster, type TestCluster } from './temporal-cluster';

export type TemporalBackend = 'dev' | 'cluster';

const KNOWN: readonly TemporalBackend[] = ['dev', 'cluster'];

export function temporalBackends(env: NodeJS.ProcessEnv = process.env): TemporalBackend[] {
  const wanted = (env.SOLSTICE_TEST_TEMPORAL ?? 'dev,cluster')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = wanted.filter((b) => !KNOWN.includes(b as TemporalBackend));
  if (unknown.length > 0 || wanted.length === 0)
    throw new Error(
      `SOLSTICE_TEST_TEMPORAL="${env.SOLSTICE_TEST_TEMPORAL}": expected a comma list of ${KNOWN.join(', ')}`,
    );
  return wanted as TemporalBackend[];
}

/**
 * The usual file setup on one backend: a harness with a worker (as harnessWithWorkerForFile),
 * on the dev server or on a cluster of the block's own, started before the block's first test;
 * after its last, the harness closes before the cluster stops. `use` receives the harness.
 */
export function harnessWithWorkerOn(backend: TemporalBackend, use: (h: Harness) => void): void {
  let cluster: TestCluster | undefined;
  let h: Harness | undefined;
  beforeAll(async () => {
    if (backend === 'cluster') cluster = await startTestCluster({ layout: 'single' });
    h = await startHarness(cluster ? { temporalAddress: cluster.address } : {});
    await h.startWorker();
    use(h);
  }, 180_000);
  afterAll(async () => {
    await h?.close();
    await cluster?.stop();
  }, 60_000);
}
