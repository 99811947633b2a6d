/**
 * Retention end to end through `solstice gc` (the built CLI, settings from the environment), on
 * the filesystem blob store and a real S3-compatible server (versitygw): with
 * SOLSTICE_RETAIN_LOGS=1s (and artifacts 1s, pipelines 1h) what is older goes from PostgreSQL
 * and the blob store, what is younger and what still runs stays, the pages say "expired", and
 * --dry-run changes nothing.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FsBlobStore, type BlobStore } from '../../../storage/blob-store';
import { loadConfig } from '../../../platform/config';
import { createLogger } from '../../../platform/logger';
import { createDb, type Db } from '../../../storage/db';
import { JobStore } from '../../../storage/job-store';
import { artifactBlobKey } from '../../../storage/artifact-store';
import { startS3DevServer, type S3DevServer } from '../../../devstack/s3-dev-server';
import { S3BlobStore } from '../../../storage/s3-blob-store';
import { startJobPage } from '../../../web/job-page/server';
import { createTestDatabase, type TestDatabase } from '../../support/database';
import { runCli } from '../../support/cli';
import { SessionStore } from '../../../storage/session-store';

let tmp: string;
let s3: S3DevServer;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-retention-'));
  s3 = await startS3DevServer({ logFile: path.join(tmp, 'versitygw.log'), buckets: ['retain'] });
});

afterAll(async () => {
  await s3?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface World {
  database: TestDatabase;
  db: Db;
  jobs: JobStore;
  blobs: BlobStore;
  env: NodeJS.ProcessEnv;
}

async function world(kind: 'filesystem' | 's3'): Promise<World> {
  const database = await createTestDatabase();
  const db = createDb(loadConfig({ databaseUrl: database.url }, {}));
  const base = { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: database.url, NO_COLOR: '1' };
  if (kind === 'filesystem') {
    const root = path.join(tmp, `blobs-${randomUUID()}`);
    const blobs = new FsBlobStore(root);
    return { database, db, blobs, jobs: new JobStore(db, blobs), env: { ...base, BLOB_FS_ROOT: root } };
  }
  const prefix = `run-${randomUUID().slice(0, 8)}`;
  const blobs = new S3BlobStore({
    bucket: 'retain',
    prefix,
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: s3.credentials,
  });
  return {
    database,
    db,
    blobs,
    jobs: new JobStore(db, blobs),
    env: {
      ...base,
      S3_BUCKET: 'retain',
      S3_PREFIX: prefix,
      S3_ENDPOINT: s3.endpoint,
      AWS_REGION: s3.region,
      AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
    },
  };
}

/**
 * A pipeline with one job that printed a log and uploaded an artifact, finished `agoMs` ago (a
 * negative age is "in the future": younger than 1s however slow this machine is).
 */
async function finishedPipeline(w: World, agoMs: number, state: 'success' | 'running' = 'success') {
  const jobId = randomUUID();
  const pipelineId = randomUUID();
  await w.jobs.recordJob(
    {
      jobId,
      source: 'manual',
      repoUrl: '/repo',
      ref: 'main',
      commitSha: 'a'.repeat(40),
      label: 'local',
      timeoutMs: 1,
      bootTimeoutMs: 1,
      maxMachineAttempts: 1,
    },
    `pipeline/${pipelineId}/job/build`,
  );
  await w.jobs.appendLogLines(
    jobId,
    Array.from({ length: 1500 }, (_, i) => ({
      seq: i + 1,
      stream: 'stdout',
      text: `line ${i + 1}`,
      time: new Date(),
    })),
  );
  await w.blobs.put(artifactBlobKey(jobId, 'dist/app.tgz'), 'bytes');
  await w.db.artifact.create({ data: { jobId, path: 'dist/app.tgz', size: 5, sha256: '0'.repeat(64) } });
  const finishedAt = new Date(Date.now() - agoMs);
  if (state !== 'running') {
    await w.jobs.finalize(jobId, { state, exitCode: 0 });
    await w.jobs.logs.archive(jobId);
    await w.db.job.update({ where: { id: jobId }, data: { finishedAt } });
  } else await w.jobs.markRunning(jobId);
  await w.db.pipeline.create({
    data: {
      id: pipelineId,
      workflowId: `pipeline/${pipelineId}`,
      repoUrl: '/repo',
      ref: 'main',
      commitSha: 'a'.repeat(40),
      state,
      finishedAt: state === 'running' ? null : finishedAt,
      jobs: { create: [{ name: 'build', needs: [], state, jobId, position: 0 }] },
    },
  });
  return { jobId, pipelineId };
}

async function keys(w: World, jobId: string): Promise<string[]> {
  return (await w.blobs.list(`jobs/${jobId}`)).map((b) => b.key.slice(`jobs/${jobId}/`.length));
}

describe.each(['filesystem', 's3'] as const)('%s', (kind) => {
  let w: World;
  let old: { jobId: string; pipelineId: string };
  let middle: { jobId: string; pipelineId: string };
  let young: { jobId: string; pipelineId: string };
  let running: { jobId: string; pipelineId: string };
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    w = await world(kind);
    old = await finishedPipeline(w, 3 * 3_600_000); // older than every limit: the pipeline goes
    middle = await finishedPipeline(w, 10 * 60_000); // older than 1s, younger than 1h
    young = await finishedPipeline(w, -10 * 60_000);
    running = await finishedPipeline(w, 0, 'running');
    env = {
      ...w.env,
      SOLSTICE_RETAIN_LOGS: '1s',
      SOLSTICE_RETAIN_ARTIFACTS: '1s',
      SOLSTICE_RETAIN_PIPELINES: '1h',
    };
  });

  afterAll(async () => {
    await w?.blobs.close();
    await w?.db.$disconnect();
    await w?.database.drop();
  });

  test('--dry-run lists what would go and changes nothing', async () => {
    const before = {
      rows: await w.db.job.count(),
      pipelines: await w.db.pipeline.count(),
      artifacts: await w.db.artifact.count(),
      blobs: (await w.blobs.list('jobs')).length,
    };
    const r = await runCli(['gc', '--dry-run'], env);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`would remove pipeline ${old.pipelineId}`);
    expect(r.stdout).toContain(`would remove log of job ${middle.jobId}`);
    expect(r.stdout).toContain(`would remove 1 artifact(s) of job ${middle.jobId}`);
    expect(r.stdout).not.toContain(young.jobId);
    expect(r.stdout).not.toContain(running.jobId);
    expect({
      rows: await w.db.job.count(),
      pipelines: await w.db.pipeline.count(),
      artifacts: await w.db.artifact.count(),
      blobs: (await w.blobs.list('jobs')).length,
    }).toEqual(before);
    expect((await w.jobs.getJob(middle.jobId))?.logExpiredAt).toBeNull();
  });

  test('gc removes what is older from PostgreSQL and the blob store, and leaves the younger', async () => {
    expect(await keys(w, old.jobId)).toEqual(['artifacts/dist/app.tgz', 'log.idx.json', 'log.txt.gz']);
    const r = await runCli(['gc'], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('removed 1 pipeline(s) with 1 job(s), 1 log(s), artifacts of 1 job(s)');

    // The old pipeline, its job, and all of its blobs.
    expect(await w.db.pipeline.findUnique({ where: { id: old.pipelineId } })).toBeNull();
    expect(await w.jobs.getJob(old.jobId)).toBeUndefined();
    expect(await keys(w, old.jobId)).toEqual([]);

    // The middle one's log and artifacts; its pipeline and job rows stay, marked.
    const mid = await w.jobs.getJob(middle.jobId);
    expect(mid?.logExpiredAt).toBeInstanceOf(Date);
    expect(mid?.artifactsExpiredAt).toBeInstanceOf(Date);
    expect(await keys(w, middle.jobId)).toEqual([]);
    expect(await w.db.artifact.count({ where: { jobId: middle.jobId } })).toBe(0);
    expect(await w.db.logChunk.count({ where: { jobId: middle.jobId } })).toBe(0);
    expect(await w.db.pipeline.findUnique({ where: { id: middle.pipelineId } })).not.toBeNull();

    // Younger and running: untouched.
    expect(await keys(w, young.jobId)).toEqual(['artifacts/dist/app.tgz', 'log.idx.json', 'log.txt.gz']);
    expect((await w.jobs.logLinesAfter(young.jobId, 1400, 200)).map((l) => l.text)[99]).toBe('line 1500');
    expect(await w.db.logChunk.count({ where: { jobId: running.jobId } })).toBeGreaterThan(0);
    expect(await keys(w, running.jobId)).toEqual(['artifacts/dist/app.tgz']);

    // A second run finds nothing more.
    expect((await runCli(['gc'], env)).stdout).toContain('nothing is older than the retention settings');
  });

  test('the pages say expired (never a 500), and so does `solstice logs`', async () => {
    const log = createLogger('test');
    log.level = 'silent';
    const server = await startJobPage({ addr: '127.0.0.1:0', jobs: w.jobs, blobs: w.blobs, log });
    try {
      const page = await fetch(`${server.url}/jobs/${middle.jobId}`);
      expect(page.status).toBe(200);
      const body = await page.text();
      expect(body).toContain('log expired on');
      expect(body).toContain('artifacts expired on');
      expect((await fetch(`${server.url}/jobs/${middle.jobId}/log.txt`)).status).toBe(410);
      expect((await fetch(`${server.url}/jobs/${old.jobId}`)).status).toBe(404);
      expect(await (await fetch(`${server.url}/jobs/${young.jobId}`)).text()).toContain('line 1500');
    } finally {
      await server.close();
    }
    const logs = await runCli(['logs', middle.jobId], w.env);
    expect(logs.code).not.toBe(0);
    expect(logs.stderr).toMatch(/the log of job .* expired on \d{4}-/);
  });
});

describe('ended sign-in sessions', () => {
  let w: World;

  beforeAll(async () => {
    w = await world('filesystem');
  });

  afterAll(async () => {
    await w?.blobs.close();
    await w?.db.$disconnect();
    await w?.database.drop();
  });

  test('go a day after they end, whatever the retention settings; a revoked one loses its token at once', async () => {
    const sessions = new SessionStore(w.db);
    const make = async (login: string, ttlMs: number) =>
      (
        await sessions.create({
          forge: 'gitea',
          forgeUrl: 'http://forge',
          login,
          accessToken: `oauth-${login}`,
          csrfSecret: 's',
          ttlMs,
        })
      ).session.id;
    const day = 24 * 3_600_000;
    await make('a', -2 * day); // expired two days ago: goes
    const expiredRecently = await make('b', -3_600_000);
    const live = await make('c', day);
    const revokedLongAgo = await make('d', day);
    await w.db.webSession.update({
      where: { id: revokedLongAgo },
      data: { revokedAt: new Date(Date.now() - 2 * day) },
    });
    const revokedNow = await make('e', day);
    await sessions.revoke(revokedNow);
    expect((await w.db.webSession.findUnique({ where: { id: revokedNow } }))?.accessToken).toBe('');
    expect(await sessions.userToken('gitea', 'e')).toBeUndefined();

    // No SOLSTICE_RETAIN_* at all: the sessions are still swept.
    const dry = await runCli(['gc', '--dry-run'], w.env);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('logs, artifacts and pipelines are kept');
    expect(dry.stdout).toContain('would remove 2 sign-in session(s) that ended over a day ago');
    expect(await w.db.webSession.count()).toBe(5);

    const r = await runCli(['gc'], w.env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('2 ended sign-in session(s)');
    const left = (await w.db.webSession.findMany({ select: { id: true } })).map((s) => s.id).sort();
    expect(left).toEqual([expiredRecently, live, revokedNow].sort());
  });
});
