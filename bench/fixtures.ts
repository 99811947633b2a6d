/**
 * What the benchmarks share: a throwaway database and RabbitMQ vhost, a stack on free ports, a
 * committed repository, one timed bare job, percentiles, the guest image's map.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import YAML from 'yaml';
import type { Stack } from '../devstack/stack';
import { machineTag } from '../provisioning/machine-name';
import { killTagged, tagsWithPrefix } from '../provisioning/process-tree';
import { runStatement } from '../storage/db-connection';
import { pgPool } from '../storage/db';
import { FINAL_STATES } from '../model/domain';
import { readInstallationId } from '../storage/installation';
import { startJob } from '../ingress/job-start';
import { freePort } from '../platform/net';
import type { JobRecord } from '../storage/job-store';
import { waitForFinalState } from '../storage/log-follow';

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** A throwaway database next to `adminUrl`, so a benchmark never touches real data. */
export async function freshDatabase(adminUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `solstice_bench_${randomBytes(4).toString('hex')}`;
  await runStatement(adminUrl, `CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => runStatement(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

/** Every address a stack listens on, each a free loopback port, so a benchmark runs next to anything. */
export async function freeStackAddresses(): Promise<{
  embeddedPgPort: string;
  temporalAddress: string;
  temporalUiPort: string;
  grpcAddr: string;
  runnerServeAddr: string;
  jobPageAddr: string;
}> {
  return {
    embeddedPgPort: String(await freePort()),
    temporalAddress: `127.0.0.1:${await freePort()}`,
    temporalUiPort: String(await freePort()),
    grpcAddr: `127.0.0.1:${await freePort()}`,
    runnerServeAddr: `127.0.0.1:${await freePort()}`,
    jobPageAddr: `127.0.0.1:${await freePort()}`,
  };
}

/** Starts a bare job for the repository's commit and waits for its final record. */
export async function runBareJob(
  client: Client,
  stack: Stack,
  repo: { dir: string; sha: string },
  label?: string,
): Promise<JobRecord> {
  const { jobId } = await startJob(client, stack.cfg, {
    source: 'manual',
    repoUrl: repo.dir,
    commitSha: repo.sha,
    ...(label ? { label } : {}),
  });
  // The lane goes on when the job's state is final (what `solstice status` shows), so a machine
  // still being destroyed overlaps the next job as it does for a user. Looked up every 50 ms
  // with one plain statement on the pool, not through Prisma: the bench's own polling would
  // otherwise take CPU from the jobs it measures.
  const pool = pgPool(stack.jobs.db);
  for (;;) {
    const { rows } = await pool.query<{ state: string }>('SELECT state FROM jobs WHERE id = $1', [jobId]);
    if (rows[0] && (FINAL_STATES as readonly string[]).includes(rows[0].state)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return waitForFinalState(stack.jobs, jobId);
}

/** A git repository in a temporary folder with `files` committed; returns it and the commit. */
export function commitRepo(files: Record<string, string>): { dir: string; sha: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-bench-repo-'));
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), content, { mode: name.endsWith('.sh') ? 0o755 : 0o644 });
  }
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: 'b',
    GIT_AUTHOR_EMAIL: 'b@x.invalid',
    GIT_COMMITTER_NAME: 'b',
    GIT_COMMITTER_EMAIL: 'b@x.invalid',
  };
  for (const args of [
    ['init', '-q'],
    ['add', '-A'],
    ['commit', '-qm', 'bench'],
  ])
    execFileSync('git', args, { cwd: dir, env });
  return { dir, sha: execFileSync('git', ['rev-parse', 'HEAD'], { cwd: dir }).toString().trim() };
}

/**
 * A bench stack's own state folder (enterable by the embedded PostgreSQL's user; mkdtemp makes
 * it 0700) and, when DATABASE_URL is set, a fresh database there instead of the embedded one.
 */
export async function benchStorage(): Promise<{
  stateDir: string;
  database: { url: string; drop(): Promise<void> } | undefined;
}> {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-bench-'));
  fs.chmodSync(stateDir, 0o755);
  const database = process.env.DATABASE_URL ? await freshDatabase(process.env.DATABASE_URL) : undefined;
  return { stateDir, database };
}

/** An image map in `scratch` for the guest image infra/images/build.sh made (1 vCPU, 1 GiB); returns its path. */
export function writeGuestImageMap(scratch: string): string {
  const imageDir = fs.realpathSync(path.join(__dirname, '..', '..', '.tools/images/debian-12'));
  const imageMap = path.join(scratch, 'images.yaml');
  fs.writeFileSync(
    imageMap,
    YAML.stringify({
      images: {
        'debian-12': {
          base: path.join(imageDir, 'base.qcow2'),
          kernel: path.join(imageDir, 'vmlinuz'),
          initrd: path.join(imageDir, 'initrd'),
          size: { cpu: 1, memory: 1024 },
        },
      },
    }),
  );
  return imageMap;
}

/**
 * A RabbitMQ vhost of the bench's own, made with rabbitmqctl (as root), so a bench's queues never
 * mix with another stack's; undefined when rabbitmqctl is not at hand (then AMQP_URL is used as is).
 */
export function throwawayVhost(): { url: string; drop(): void } | undefined {
  const name = `solstice_bench_${randomBytes(4).toString('hex')}`;
  try {
    execFileSync('rabbitmqctl', ['-q', 'add_vhost', name], { stdio: 'ignore' });
    execFileSync('rabbitmqctl', ['-q', 'set_permissions', '-p', name, 'guest', '.*', '.*', '.*'], {
      stdio: 'ignore',
    });
  } catch {
    return undefined;
  }
  return {
    url: `amqp://guest:guest@127.0.0.1:5672/${name}`,
    drop: () => execFileSync('rabbitmqctl', ['-q', 'delete_vhost', name], { stdio: 'ignore' }),
  };
}

/**
 * Stops a bench's stack and its Temporal client, then the machines its warm pool still keeps
 * (a pool's idle machine outlives the worker, since a restart would adopt it: this run is over).
 */
export async function stopStackAndPool(stack: Stack, temporal: { close(): Promise<void> }): Promise<void> {
  const owner = { installationId: await readInstallationId(stack.jobs.db), hostId: stack.cfg.hostId };
  await temporal.close();
  await stack.stop();
  for (const tag of (await tagsWithPrefix(machineTag(owner, ''))).keys()) await killTagged(tag, 1000);
}
