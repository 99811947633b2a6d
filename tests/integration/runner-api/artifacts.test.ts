/**
 * Artifacts end to end: real jobs on the local provider upload the files their globs match,
 * after passing and after failing steps; `solstice artifacts list|get` show and return them byte
 * for byte; the log service refuses files over the size limits (the job's log says why) and
 * paths that would leave the job's artifacts folder.
 */
import { randomBytes, randomUUID, createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ArtifactStore } from '../../../storage/artifact-store';
import { hashJobToken, newJobToken } from '../../../model/job-token';
import {
  bearerMetadata,
  createRunnerServiceClient,
  type ArtifactChunk,
  type ArtifactUploaded__Output,
} from '../../../model/runner-proto';
import type { JobStep } from '../../../model/job-file';
import { cliEnv, runCli } from '../../support/cli';
import { makeRepo } from '../../support/git-repo';
import { startHarness, type Harness } from '../../support/harness';

let h: Harness;
let tmp: string;

beforeAll(async () => {
  h = await startHarness({ artifactMaxFileBytes: '1MiB', artifactMaxJobBytes: '1536KiB' });
  await h.startWorker();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-artifacts-test-'));
});

afterAll(async () => {
  await h?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const env = () => cliEnv(h.cfg);

async function runJob(steps: JobStep[], artifacts: string[], jobEnv: Record<string, string> = {}) {
  const repo = makeRepo({ 'README.md': 'artifacts test\n' });
  const { jobId, workflowId } = await h.startJobWith(
    repo,
    { env: jobEnv, steps, artifacts },
    'test-artifacts',
  );
  const job = await h.result(workflowId, jobId);
  const log = (await h.jobs.logLinesAfter(jobId, 0, 10_000)).map((l) => l.text);
  return { jobId, job, log };
}

function fixture(name: string, bytes: number): { file: string; data: Buffer } {
  const data = randomBytes(bytes);
  const file = path.join(tmp, name);
  fs.writeFileSync(file, data);
  return { file, data };
}

test('a passing job uploads what its globs match; list and get return the same bytes', async () => {
  const bin = fixture('pass.bin', 300_000);
  const { jobId, job, log } = await runJob(
    [
      {
        name: 'build',
        run: 'mkdir -p out/sub && cp "$FIXTURE" out/sub/data.bin && echo hello > out/a.txt && echo no > out/skip.log && ln -s /etc/hostname out/link.txt && ln -s /etc out/etc',
        continueOnError: false,
      },
    ],
    ['out/**/*.bin', 'out/*.txt', 'out/etc/hostname', 'missing/*.zip'],
    { FIXTURE: bin.file },
  );
  expect(job.state).toBe('success');
  expect(log).toContain('artifacts: nothing matches "missing/*.zip"');
  expect(log).toContain('artifact out/etc/hostname skipped: it points outside the checkout');
  expect(log.some((l) => l.startsWith('artifact out/sub/data.bin uploaded (293.0 KiB, sha256 '))).toBe(true);

  const listed = await runCli(['artifacts', 'list', jobId, '--json'], env());
  expect(listed.stderr).toBe('');
  const rows = listed.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { path: string; size: number; sha256: string });
  expect(rows.map((r) => [r.path, r.size])).toEqual([
    ['out/a.txt', 6],
    ['out/sub/data.bin', 300_000],
  ]);
  expect(rows[1].sha256).toBe(createHash('sha256').update(bin.data).digest('hex'));

  const out = path.join(tmp, 'got.bin');
  const got = await runCli(['artifacts', 'get', jobId.slice(0, 8), 'out/sub/data.bin', '-o', out], env());
  expect(got).toMatchObject({ code: 0, stderr: '' });
  expect(fs.readFileSync(out).equals(bin.data)).toBe(true);
  const toStdout = await runCli(['artifacts', 'get', jobId, 'out/a.txt'], env());
  expect(toStdout.stdout).toBe('hello\n');

  const missing = await runCli(['artifacts', 'get', jobId, 'out/skip.log'], env());
  expect(missing.code).not.toBe(0);
  expect(missing.stderr).toContain(`job ${jobId} has no artifact out/skip.log`);
});

test("a workflow file's artifacts reach the runner through the pipeline", async () => {
  const repo = makeRepo({
    '.solstice/workflow.kdl':
      'job "build" {\n  step "make" run="mkdir -p dist/x && echo built > dist/x/app.txt"\n  artifacts "dist"\n}\n',
  });
  const { pipelineId, workflowId } = await h.startPipeline(repo.dir, repo.sha);
  expect((await h.pipelineResult(workflowId, pipelineId)).state).toBe('success');
  const [job] = await h.pipelines.listJobs(pipelineId);
  const listed = await new ArtifactStore(h.db).list(job.jobId as string);
  expect(listed.map((a) => [a.path, a.size])).toEqual([['dist/x/app.txt', 6]]);
});

test('a failing job uploads its artifacts too', async () => {
  const { jobId, job, log } = await runJob(
    [
      {
        name: 'test',
        run: 'mkdir -p reports && echo "1 failed" > reports/junit.xml && exit 3',
        continueOnError: false,
      },
    ],
    ['reports'],
  );
  expect(job.state).toBe('failure');
  expect(job.exitCode).toBe(3);
  expect(log).toContain('artifacts: 1 of 1 files uploaded (9 B)');
  const got = await runCli(['artifacts', 'get', jobId, 'reports/junit.xml'], env());
  expect(got.stdout).toBe('1 failed\n');
});

test('files over the per-file or per-job limit are refused with a message in the log', async () => {
  const { jobId, job, log } = await runJob(
    [
      {
        name: 'make',
        run: 'head -c 2097152 /dev/zero > big.bin && head -c 716800 /dev/zero > p1.bin && head -c 716800 /dev/zero > p2.bin && head -c 716800 /dev/zero > p3.bin',
        continueOnError: false,
      },
    ],
    ['*.bin'],
  );
  expect(job.state).toBe('success');
  expect(log).toContain(
    'artifact big.bin not uploaded: artifact big.bin is 2.0 MiB, over the per-file limit of 1.0 MiB (SOLSTICE_ARTIFACT_MAX_FILE_SIZE)',
  );
  expect(log).toContain(
    "artifact p3.bin not uploaded: artifact p3.bin (700.0 KiB) would bring this job's artifacts to 2.1 MiB, over the per-job limit of 1.5 MiB (SOLSTICE_ARTIFACT_MAX_JOB_SIZE)",
  );
  expect((await new ArtifactStore(h.db).list(jobId)).map((a) => a.path)).toEqual(['p1.bin', 'p2.bin']);
  expect(fs.existsSync(path.join(h.cfg.blobFsRoot, 'jobs', jobId, 'artifacts', 'big.bin'))).toBe(false);
});

describe('UploadArtifact refuses what it must', () => {
  let jobId: string;
  let token: string;
  let client: ReturnType<typeof createRunnerServiceClient>;

  beforeAll(async () => {
    // A job that is "running" with a live token, without a machine: the calls come from the test.
    jobId = randomUUID();
    token = newJobToken();
    await h.jobs.recordJob(
      {
        jobId,
        source: 'manual',
        repoUrl: '/nowhere',
        commitSha: 'abcdef1',
        label: 'local',
        timeoutMs: 1,
        bootTimeoutMs: 1,
        maxMachineAttempts: 1,
      },
      `test-upload/${jobId}`,
    );
    await h.jobs.beginAttempt(jobId, 1, hashJobToken(token));
    client = createRunnerServiceClient(h.logService.address);
  });

  afterAll(() => client?.close());

  function upload(
    messages: ArtifactChunk[],
    metaToken = token,
  ): Promise<{ err?: grpc.ServiceError; res?: ArtifactUploaded__Output }> {
    return new Promise((resolve) => {
      const call = client.uploadArtifact(bearerMetadata(metaToken), (err, res) =>
        resolve(err ? { err } : { res }),
      );
      for (const m of messages) call.write(m);
      call.end();
    });
  }
  const file = (p: string, data: Buffer, size = data.length): ArtifactChunk[] => [
    { header: { jobId, path: p, size } },
    { data },
  ];

  test('a good upload is stored with its SHA-256', async () => {
    const data = Buffer.from('fine\n');
    const { res, err } = await upload(file('dir/ok.txt', data));
    expect(err).toBeUndefined();
    expect(res).toEqual({
      path: 'dir/ok.txt',
      size: 5,
      sha256: createHash('sha256').update(data).digest('hex'),
    });
    expect(
      fs.readFileSync(path.join(h.cfg.blobFsRoot, 'jobs', jobId, 'artifacts', 'dir', 'ok.txt'), 'utf8'),
    ).toBe('fine\n');
  });

  test.each([
    '../escape.txt',
    'a/../../escape.txt',
    '/etc/escape.txt',
    '%2e%2e/escape.txt',
    '..%2fescape.txt',
    'a\\..\\escape.txt',
    './a.txt',
    'a//b.txt',
    'a/\u0000b',
    '',
  ])('path %j is refused and nothing is written outside the folder', async (p) => {
    const { err } = await upload(file(p, Buffer.from('x')));
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toMatch(/artifact path .* is not allowed|control characters/);
    expect(fs.existsSync(path.join(h.cfg.blobFsRoot, 'jobs', jobId, 'escape.txt'))).toBe(false);
    expect(fs.existsSync(path.join(h.cfg.blobFsRoot, 'jobs', 'escape.txt'))).toBe(false);
  });

  test('bytes that do not add up to the announced size are not kept', async () => {
    const short = await upload(file('short.txt', Buffer.from('abc'), 10));
    expect(short.err?.details).toBe('artifact short.txt ended after 3 of the 10 bytes its header announced');
    const long = await upload(file('long.txt', Buffer.from('abcdef'), 2));
    expect(long.err?.details).toBe('artifact long.txt sent more than the 2 bytes its header announced');
    const stored = (await new ArtifactStore(h.db).list(jobId)).map((a) => a.path);
    expect(stored).toEqual(['dir/ok.txt']);
    expect(fs.readdirSync(path.join(h.cfg.blobFsRoot, 'jobs', jobId, 'artifacts')).sort()).toEqual(['dir']);
  });

  test('another token, or none, is refused', async () => {
    const { err } = await upload(file('x.txt', Buffer.from('x')), newJobToken());
    expect(err?.code).toBe(grpc.status.UNAUTHENTICATED);
  });
});
