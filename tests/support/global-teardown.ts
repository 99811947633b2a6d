import type { DevServer } from '../../common/temporal-dev-server';

export default async function globalTeardown(): Promise<void> {
  await (globalThis as { __solsticeTemporal?: DevServer }).__solsticeTemporal?.stop();
}
