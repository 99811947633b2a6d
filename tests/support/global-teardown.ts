import type { DevServer } from '../../devstack/temporal-dev-server';
import { failOnLeaks } from './leak-check';

/**
 * Each project's teardown (unit, integration) runs this; one jest run of both projects calls
 * it twice, so what it has done is taken off the global and the second call finds nothing.
 * Tests never call it: under --runInBand they share this global, and would stop the run's
 * Temporal server (tests/unit/platform/leak-check.test.ts calls failOnLeaks instead).
 */
export default async function globalTeardown(): Promise<void> {
  const g = globalThis as { __solsticeTemporal?: DevServer; __solsticeRun?: { id: string; tmp: string } };
  const temporal = g.__solsticeTemporal;
  delete g.__solsticeTemporal;
  await temporal?.stop();
  const run = g.__solsticeRun;
  delete g.__solsticeRun;
  if (run) await failOnLeaks(run);
}
