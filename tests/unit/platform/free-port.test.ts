/**
 * freePort hands out ports the kernel never hands out itself (below its ephemeral range), none
 * twice within a minute in one process, and each one a server can then bind.
 */
import fs from 'node:fs';
import net from 'node:net';
import { freePort } from '../../../platform/net';

const ephemeralFloor = Number(
  fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0],
);

test('ports below the ephemeral range and below 32768, distinct, and bindable', async () => {
  const ports: number[] = [];
  for (let i = 0; i < 50; i++) ports.push(await freePort());
  expect(new Set(ports).size).toBe(50);
  for (const p of ports) {
    expect(p).toBeGreaterThanOrEqual(10_000);
    expect(p).toBeLessThan(Math.min(ephemeralFloor, 32_768));
  }
  const servers = await Promise.all(
    ports.slice(0, 5).map(
      (p) =>
        new Promise<net.Server>((resolve, reject) => {
          const s = net.createServer();
          s.once('error', reject);
          s.listen(p, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});
