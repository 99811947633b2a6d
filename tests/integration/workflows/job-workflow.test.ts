/**
 * JobWorkflow end to end on a real Temporal dev server, real PostgreSQL, the real log service,
 * the real runner bundle downloaded over HTTP, and real processes (the local provider).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import YAML from 'yaml';
import * as grpc from '@grpc/grpc-js';
import { bearerMetadata, createRunnerServiceClient } from '../../../model/runner-proto';
import { formatSteps } from '../../../cli/output';
import { machineFolderName } from '../../../provisioning/machine-name';
import { readInstallationId } from '../../../storage/installation';
import { jobRepo, makeRepo } from '../../support/git-repo';
import { startHarness, type Harness } from '../../support/harness';
import { refuseLogText } from '../../support/database';
import { gatePath, waitFor } from '../../support/wait';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
  await h.startWorker();
});

afterAll(async () => {
  await h?.close();
});

test('a passing script ends success, its log is stored, and nothing is left behind', async () => {
  const repo = jobRepo(
    'echo "hello from $SOLSTICE_COMMIT_SHA"\necho "token:${SOLSTICE_JOB_TOKEN:-absent}"\necho oops >&2',
  );
  const { jobId, workflowId } = await h.enqueue(repo.dir, repo.sha);
  const job = await h.result(workflowId, jobId);
  expect(job.state).toBe('success');
  expect(job.exitCode).toBe(0);
  const lines = await h.jobs.logLinesAfter(jobId, 0, 1000);
  const texts = lines.map((l) => l.text);
  expect(texts).toContain(`hello from ${repo.sha}`);
  expect(texts).toContain('token:absent');
  expect(lines.find((l) => l.text === 'oops')?.stream).toBe('stderr');
  expect(await h.leftovers()).toEqual({ processes: [], workspaces: [] });
  // The whole log also lands in the blob store.
  const blob = gunzipSync(
    fs.readFileSync(path.join(h.cfg.blobFsRoot, 'jobs', jobId, 'log.txt.gz')),
  ).toString();
  expect(blob).toContain(`hello from ${repo.sha}\n`);
  // The run is visible through the Temporal Web UI's server (the same API its pages use).
  const query = encodeURIComponent(`WorkflowId = "${workflowId}"`);
  const res = await fetch(
    `${process.env.SOLSTICE_TEST_TEMPORAL_UI}/api/v1/namespaces/default/workflows?query=${query}`,
  );
  const body = (await res.json()) as { executions: { type: { name: string }; status: string }[] };
  expect(body.executions).toHaveLength(1);
  expect(body.executions[0].type.name).toBe('JobWorkflow');
  expect(body.executions[0].status).toBe('WORKFLOW_EXECUTION_STATUS_COMPLETED');
});

test("a job's steps run on the machine; the log service stores each step's result; status shows them", async () => {
  // job.sh is there but the job's steps win: they come from the workflow file via JobInput.
  const repo = makeRepo({ '.solstice/job.sh': 'echo job.sh ran\n', 'lib/x.txt': 'x\n' });
  const { jobId, workflowId } = await h.startJobWith(
    repo,
    {
      env: { WHO: 'steps' },
      steps: [
        { name: 'hello', run: 'echo "hello from $WHO"', continueOnError: false },
        { name: 'list', run: 'ls', workingDirectory: 'lib', continueOnError: false },
        { name: 'flaky', run: 'exit 4', continueOnError: true },
      ],
    },
    'test-steps',
  );
  const job = await h.result(workflowId, jobId);
  expect(job.state).toBe('success');
  const texts = (await h.jobs.logLinesAfter(jobId, 0, 1000)).map((l) => l.text);
  expect(texts).toContain('hello from steps');
  expect(texts).toContain('x.txt');
  expect(texts).not.toContain('job.sh ran');
  const steps = await h.jobs.listSteps(jobId);
  expect(steps.map((st) => [st.index, st.name, st.outcome, st.exitCode, st.continueOnError])).toEqual([
    [1, 'hello', 'success', 0, false],
    [2, 'list', 'success', 0, false],
    [3, 'flaky', 'failure', 4, true],
  ]);
  expect(texts[(steps[0].firstSeq as number) - 1]).toBe('step 1/3 "hello" started');
  expect(steps[0].startedAt).toBeInstanceOf(Date);
  const shown = formatSteps({ steps, lost: [] });
  expect(shown).toMatch(/ 1\. hello +success exit 0 \d+(\.\d+)?m?s/);
  expect(shown).toMatch(/ 3\. flaky +failure exit 4 \d+(\.\d+)?m?s \(continue-on-error\)/);
  expect(await h.leftovers()).toEqual({ processes: [], workspaces: [] });
});

test('a job.sh job is one step named .solstice/job.sh', async () => {
  const repo = jobRepo('echo one step');
  const { jobId, workflowId } = await h.enqueue(repo.dir, repo.sha);
  expect((await h.result(workflowId, jobId)).state).toBe('success');
  const steps = await h.jobs.listSteps(jobId);
  expect(steps).toEqual([
    expect.objectContaining({ index: 1, name: '.solstice/job.sh', outcome: 'success' }),
  ]);
});

test('a script that exits 3 ends failure with exit code 3 and is not retried', async () => {
  const repo = jobRepo('echo about to fail\nexit 3');
  const { jobId, workflowId } = await h.enqueue(repo.dir, repo.sha);
  const job = await h.result(workflowId, jobId);
  expect(job.state).toBe('failure');
  expect(job.exitCode).toBe(3);
  expect(job.attempt).toBe(1);
  const desc = await h.client.workflow.getHandle(workflowId).describe();
  expect(desc.status.name).toBe('FAILED');
});

test('10,000 interleaved stdout/stderr lines are stored once each, in order', async () => {
  const repo = jobRepo('i=1\nwhile [ $i -le 5000 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done');
  const { jobId, workflowId } = await h.enqueue(repo.dir, repo.sha);
  const job = await h.result(workflowId, jobId);
  expect(job.state).toBe('success');
  // The finished job's log, read back from the blob store (its chunks left PostgreSQL).
  const rows = await h.jobs.logLinesAfter(jobId, 0, 20_000);
  expect(await h.db.logChunk.count({ where: { jobId } })).toBe(0);
  const script = rows.filter((r) => r.stream === 'stdout' || r.stream === 'stderr');
  expect(script).toHaveLength(10_000);
  // Sequence numbers are dense from 1: nothing lost, nothing stored twice.
  expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
  const out = script.filter((r) => r.stream === 'stdout').map((r) => r.text);
  const err = script.filter((r) => r.stream === 'stderr').map((r) => r.text);
  expect(out).toEqual(Array.from({ length: 5000 }, (_, i) => `out ${i + 1}`));
  expect(err).toEqual(Array.from({ length: 5000 }, (_, i) => `err ${i + 1}`));
});

/** The log lines a byte stream must become: invalid UTF-8 and NUL visibly replaced (U+FFFD). */
function expectedLines(bytes: Buffer): string[] {
  const decoder = new TextDecoder('utf-8');
  const out: string[] = [];
  let start = 0;
  for (let nl = bytes.indexOf(0x0a); nl !== -1; nl = bytes.indexOf(0x0a, start)) {
    const end = nl > start && bytes[nl - 1] === 0x0d ? nl - 1 : nl;
    out.push(decoder.decode(bytes.subarray(start, end)).replaceAll('\0', '\uFFFD'));
    start = nl + 1;
  }
  return out;
}

test('a job printing NUL bytes, invalid UTF-8 and 1 MB of /dev/urandom ends success with its whole log stored', async () => {
  const dump = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-bytes-')), 'printed.bin');
  const repo = jobRepo(
    [
      `{ printf 'a\\000b\\n'; printf 'bad \\377\\376 utf8 \\300\\n'; head -c 1048576 /dev/urandom; printf '\\nend\\n'; } > ${dump}`,
      `cat ${dump}`,
    ].join('\n'),
  );
  const { jobId, workflowId } = await h.enqueue(repo.dir, repo.sha);
  const job = await h.result(workflowId, jobId);
  expect(job.state).toBe('success');
  const rows = await h.jobs.logLinesAfter(jobId, 0, 1_000_000);
  const printed = expectedLines(fs.readFileSync(dump));
  expect(printed[0]).toBe('a\uFFFDb');
  expect(printed[1]).toBe('bad \uFFFD\uFFFD utf8 \uFFFD');
  expect(rows.filter((r) => r.stream === 'stdout').map((r) => r.text)).toEqual(printed);
  expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
  const blob = gunzipSync(
    fs.readFileSync(path.join(h.cfg.blobFsRoot, 'jobs', jobId, 'log.txt.gz')),
  ).toString();
  expect(blob).toBe(rows.map((r) => `${r.text}\n`).join(''));
}, 180_000);

test('a line the database refuses for good is replaced by a notice in the log and the job goes on', async () => {
  // A real data exception from PostgreSQL (SQLSTATE 22023) for one marked line.
  const allowAgain = await refuseLogText(h.db, 'refuse me');
  try {
    const repo = jobRepo('echo before\necho "refuse me"\necho after');
    const { jobId, workflowId } = await h.enqueue(repo.dir, repo.sha);
    const job = await h.result(workflowId, jobId);
    expect(job.state).toBe('success');
    const texts = (await h.jobs.logLinesAfter(jobId, 0, 1000)).map((l) => l.text);
    const at = texts.indexOf('before');
    expect(texts[at + 1]).toMatch(
      /^\[solstice: the log service refused this line for good .*line refused by the test/,
    );
    expect(texts[at + 2]).toBe('after');
  } finally {
    await allowAgain();
  }
}, 180_000);

test("a runner presenting another job's token is rejected, and a finished job's token is revoked", async () => {
  const gate = gatePath();
  const repo = jobRepo(`echo waiting\nwhile [ ! -e ${gate} ]; do sleep 0.1; done\necho released`);
  const a = await h.enqueue(repo.dir, repo.sha);
  const b = await h.enqueue(repo.dir, repo.sha);
  await waitFor(
    async () =>
      (await h.jobs.getJob(a.jobId))?.state === 'running' &&
      (await h.jobs.getJob(b.jobId))?.state === 'running',
  );
  const owner = { installationId: await readInstallationId(h.db), hostId: h.cfg.hostId };
  const jobFile = path.join(
    h.workspaceRoot,
    machineFolderName(owner, `job-${a.jobId}-1`),
    'root/etc/solstice/job.yaml',
  );
  const tokenA = (YAML.parse(fs.readFileSync(jobFile, 'utf8')) as { token: string }).token;
  const client = createRunnerServiceClient(h.logService.address);
  const startAs = (jobId: string, token: string) =>
    new Promise<grpc.status>((resolve) =>
      client.StartJob({ jobId, hostname: 'intruder' }, bearerMetadata(token), (err) =>
        resolve(err ? err.code : grpc.status.OK),
      ),
    );
  expect(await startAs(b.jobId, tokenA)).toBe(grpc.status.PERMISSION_DENIED);
  expect(await startAs(a.jobId, 'not-a-token')).toBe(grpc.status.UNAUTHENTICATED);
  // The token also has an expiry time: the job's boot and run timeouts plus 30 min of grace.
  const minted = await h.db.job.findUniqueOrThrow({ where: { id: a.jobId } });
  const validFor = h.cfg.bootTimeoutMs + h.cfg.jobTimeoutMs;
  expect(minted.tokenExpiresAt?.getTime()).toBeGreaterThan(minted.createdAt.getTime() + validFor);
  expect(minted.tokenExpiresAt?.getTime()).toBeLessThanOrEqual(Date.now() + validFor + 30 * 60_000);
  fs.writeFileSync(gate, '');
  expect((await h.result(a.workflowId, a.jobId)).state).toBe('success');
  expect((await h.result(b.workflowId, b.jobId)).state).toBe('success');
  expect(await startAs(a.jobId, tokenA)).toBe(grpc.status.UNAUTHENTICATED);
  expect((await h.db.job.findUniqueOrThrow({ where: { id: a.jobId } })).tokenExpiresAt).toBeNull();
  client.close();
  // Job b's log has no line from the intruder.
  const lines = await h.jobs.logLinesAfter(b.jobId, 0, 100);
  expect(lines.map((l) => l.text)).toEqual(expect.arrayContaining(['waiting', 'released']));
});

test('cancelling a running job destroys its machine and records cancelled', async () => {
  const repo = jobRepo('echo started\nsleep 600');
  const { jobId, workflowId } = await h.enqueue(repo.dir, repo.sha);
  await waitFor(async () => (await h.jobs.logLinesAfter(jobId, 0, 1000)).some((l) => l.text === 'started'));
  await h.client.workflow.getHandle(workflowId).cancel();
  const job = await h.result(workflowId, jobId);
  expect(job.state).toBe('cancelled');
  const desc = await h.client.workflow.getHandle(workflowId).describe();
  expect(desc.status.name).toBe('CANCELLED');
  expect(await h.leftovers()).toEqual({ processes: [], workspaces: [] });
});
