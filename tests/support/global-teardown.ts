import type { DevServer } from '../../devstack/temporal-dev-server';

export default async function globalTeardown(): Promise<void> {
  await (globalThis as { __solsticeTemporal?: DevServer }).__solsticeTemporal?.stop();
}
