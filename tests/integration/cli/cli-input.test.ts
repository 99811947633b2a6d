/** The CLI as a user runs it (a real process): bad input is refused clearly and changes nothing. */
import { freePort } from '../../../platform/net';
import { cliEnv, runCli, type CliResult } from '../../support/cli';
import { CLI_MODES, cliModesForFile, type CliMode } from '../../support/cli-modes';
import { jobRepo, makeRepo } from '../../support/git-repo';
import { harnessWithWorkerForFile, type Harness } from '../../support/harness';

let h: Harness;
harnessWithWorkerForFile((harness) => (h = harness));
const modes = cliModesForFile(() => h);

function solstice(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runCli(args, { ...cliEnv(h.cfg), ...env });
}

test('a commit with neither workflow.kdl nor job.sh is refused and records nothing', async () => {
  const repo = makeRepo({ 'README.md': 'no ci here' });
  const r = await solstice(['enqueue', '--repo', repo.dir]);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/has neither \.solstice\/workflow\.kdl nor \.solstice\/job\.sh/);
  expect(r.stderr).toMatch(/hint: +Add \.solstice\/job\.sh/);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  expect(await h.db.job.count()).toBe(0);
});

test('an unknown commit is refused and records nothing', async () => {
  const repo = jobRepo('true');
  const r = await solstice(['enqueue', '--repo', repo.dir, '--commit', 'deadbeefdeadbeef']);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/commit "deadbeefdeadbeef" does not exist in/);
  expect(await h.db.job.count()).toBe(0);
});

test('Temporal unreachable: the message names the address and how to start it', async () => {
  const port = await freePort();
  const repo = jobRepo('true');
  const r = await solstice(['enqueue', '--repo', repo.dir], { TEMPORAL_ADDRESS: `127.0.0.1:${port}` });
  expect(r.code).toBe(69);
  expect(r.stderr).toMatch(new RegExp(`Temporal is not reachable at 127\\.0\\.0\\.1:${port}`));
  expect(r.stderr).toMatch(/solstice up/);
  expect(await h.db.job.count()).toBe(0);
});

test('PostgreSQL unreachable: the message names the address, not the password', async () => {
  const port = await freePort();
  const r = await solstice(['jobs'], { DATABASE_URL: `postgresql://ci:s3cret@127.0.0.1:${port}/solstice` });
  expect(r.code).toBe(69);
  expect(r.stderr).toMatch(new RegExp(`PostgreSQL is not reachable at 127\\.0\\.0\\.1:${port}`));
  expect(r.stderr).not.toMatch(/s3cret/);
});

describe.each(CLI_MODES)('%s mode', (mode: CliMode) => {
  test('enqueue --follow prints the live log and exits with the job result; status and logs (-f) read it back', async () => {
    const repo = jobRepo('echo line one\necho line two >&2\nexit 3');
    const r = await runCli(['enqueue', '--repo', repo.dir, '--follow'], modes.env(mode));
    expect(r.code).toBe(1);
    const jobId = /^job ([0-9a-f-]{36})$/m.exec(r.stdout)?.[1] as string;
    expect(jobId).toBeDefined();
    expect(r.stdout).toMatch(/line one\nline two\n/);
    expect(r.stdout).toMatch(new RegExp(`job ${jobId} failure \\(exit code 3\\)`));

    const status = await runCli(['status', modes.ref(mode, jobId)], modes.env(mode));
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/state +failure/);
    expect(status.stdout).toMatch(/exit code +3/);
    const logs = await runCli(['logs', jobId], modes.env(mode));
    expect(logs.stdout).toMatch(/line one\nline two\n/);
    const followed = await runCli(['logs', '-f', jobId, '--exit-status'], modes.env(mode));
    expect([followed.code, followed.stdout]).toEqual([1, expect.stringMatching(/line one\nline two\n/)]);
    const jobs = await runCli(['jobs'], modes.env(mode));
    expect(jobs.stdout).toContain(jobId);
  });
});

test('--help of every command documents env fallbacks', async () => {
  for (const cmd of ['enqueue', 'logs', 'status', 'jobs', 'up', 'worker', 'db migrate', 'ci-local']) {
    const r = await solstice([...cmd.split(' '), '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\[env: TEMPORAL_ADDRESS; default: 127\.0\.0\.1:7233\]/);
    expect(r.stdout).toMatch(/\[env: DATABASE_URL;/);
  }
});
