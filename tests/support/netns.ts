/**
 * A test network of separate hosts on this machine: Linux network namespaces, each joined by a
 * veth pair to a bridge of the test's own in the root namespace (root only). The bridge's
 * address is how the namespaces reach what runs in the root namespace (a service this test
 * started there and bound to it); namespaces reach each other over their own addresses. A host
 * is lost by cutting its link and SIGKILLing every process in its namespace. `remove` deletes
 * all of it (also what a failed test left), so nothing outlives the test.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export interface NetHost {
  /** The name the test gave it. */
  name: string;
  /** The network namespace (`ip netns` name). */
  ns: string;
  /** Its address on the test network. */
  addr: string;
  /** The root-namespace end of its veth pair (on the bridge). */
  veth: string;
}

export interface TestNetwork {
  /** The bridge's address: the root namespace as the hosts see it. */
  bridgeAddr: string;
  hosts: Map<string, NetHost>;
  /** Runs `command` inside the host's namespace (`ip netns exec`, which execs it: the pid is its own). */
  spawnIn(host: string, command: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /** Every process in the host's namespace. */
  pids(host: string): number[];
  /** Cuts the host's link and SIGKILLs every process in it, as a host that lost power. */
  lose(host: string): number[];
  remove(): void;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A /24 in 10.0.0.0/8 no interface of this machine is in yet. */
function freeSubnet(): string {
  const used = ip('-o', '-4', 'addr');
  for (;;) {
    const net = `10.${200 + (randomBytes(1)[0] % 50)}.${randomBytes(1)[0]}`;
    if (!used.includes(` ${net}.`)) return net;
  }
}

export function createTestNetwork(hostNames: string[]): TestNetwork {
  if (!isRoot()) throw new Error('network namespaces need root');
  const id = randomBytes(3).toString('hex');
  const subnet = freeSubnet();
  const bridge = `sb${id}`;
  const bridgeAddr = `${subnet}.1`;
  const hosts = new Map<string, NetHost>();
  const network: TestNetwork = {
    bridgeAddr,
    hosts,
    spawnIn(host, command, args, opts = {}) {
      const h = hosts.get(host);
      if (!h) throw new Error(`no host ${host} on the test network`);
      return spawn('ip', ['netns', 'exec', h.ns, command, ...args], opts);
    },
    pids(host) {
      const h = hosts.get(host);
      if (!h) return [];
      try {
        return ip('netns', 'pids', h.ns).split('\n').filter(Boolean).map(Number);
      } catch {
        return [];
      }
    },
    lose(host) {
      const h = hosts.get(host);
      if (!h) throw new Error(`no host ${host} on the test network`);
      ip('link', 'set', h.veth, 'down');
      const pids = network.pids(host);
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // exited meanwhile
        }
      }
      return pids;
    },
    remove() {
      for (const h of hosts.values()) {
        for (const pid of network.pids(h.name)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // exited meanwhile
          }
        }
        // The pair goes with its root end at once; the namespace itself may linger until its
        // last sockets (TIME_WAIT) are gone, and its end of the pair with it.
        try {
          ip('link', 'del', h.veth);
        } catch {
          // never made
        }
        try {
          ip('netns', 'del', h.ns);
        } catch {
          // never made
        }
      }
      try {
        ip('link', 'del', bridge);
      } catch {
        // never made
      }
    },
  };
  try {
    ip('link', 'add', bridge, 'type', 'bridge');
    ip('addr', 'add', `${bridgeAddr}/24`, 'dev', bridge);
    ip('link', 'set', bridge, 'up');
    hostNames.forEach((name, i) => {
      const h: NetHost = { name, ns: `sol-${id}-${name}`, addr: `${subnet}.${10 + i}`, veth: `sv${id}${i}` };
      hosts.set(name, h);
      ip('netns', 'add', h.ns);
      ip('link', 'add', h.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns);
      ip('link', 'set', h.veth, 'master', bridge, 'up');
      ip('-n', h.ns, 'addr', 'add', `${h.addr}/24`, 'dev', 'eth0');
      ip('-n', h.ns, 'link', 'set', 'eth0', 'up');
      ip('-n', h.ns, 'link', 'set', 'lo', 'up');
    });
  } catch (err) {
    network.remove();
    throw err;
  }
  return network;
}
