/** What a pipeline runs, from a workflow file and a trigger; and the ids a JobRequest gets as a pipeline. */
import { rmSync } from 'node:fs';
import { ApplicationFailure } from '@temporalio/common';
import {
  CommitUnreadableError,
  loadPipelinePlan,
  planInProcess,
  type PlanRequest,
} from '../../../activities/commit-plan';
import { planFromWorkflowFile } from '../../../activities/pipeline-plan';
import { JOB_SCRIPT_PATH, WORKFLOW_FILE_PATH } from '../../../model/job-definition-paths';
import { commitFiles, makeRepo, type TestRepo } from '../../support/git-repo';
import { newJobRequest } from '../../../model/job-request';
import { eventOfRequest, pipelineIdsForRequest, pipelineInput } from '../../../ingress/pipeline-start';
import { aggregateState } from '../../../workflows/pipeline';
import { branchOf } from '../../../model/domain';

const FILE = `
env SHARED="1"
job "build" {
  timeout "5m"
  env ONLY_BUILD="yes"
  step "compile" run="make" working-directory="src"
  step "lint" run="make lint" continue-on-error=#true
  artifacts "dist/**" "build.log"
}
job "test" {
  needs "build"
  matrix {
    node "18" "20"
  }
  runs-on "local"
  step "t" run="npm test"
}
job "deploy" {
  needs "test"
  when {
    events "push"
    branches "main"
  }
  step "ship" run="./ship"
}
cancel-superseded #false
`;

describe('planFromWorkflowFile', () => {
  test('expands matrix jobs, makes needs point at every instance, carries steps, env and timeouts', () => {
    const plan = planFromWorkflowFile(FILE, { event: 'push', ref: 'refs/heads/main' });
    expect(plan.definition).toBe('.solstice/workflow.kdl');
    expect(plan.cancelSuperseded).toBe(false);
    expect(plan.jobs.map((j) => [j.name, j.needs, j.skipReason])).toEqual([
      ['build', [], undefined],
      ['test[node=18]', ['build'], undefined],
      ['test[node=20]', ['build'], undefined],
      ['deploy', ['test[node=18]', 'test[node=20]'], undefined],
    ]);
    const [build, test18] = plan.jobs;
    expect(build).toMatchObject({
      runsOn: 'local',
      timeoutMs: 300_000,
      env: { SHARED: '1', ONLY_BUILD: 'yes' },
      steps: [
        { name: 'compile', run: 'make', workingDirectory: 'src', continueOnError: false },
        { name: 'lint', run: 'make lint', continueOnError: true },
      ],
    });
    expect(build.artifacts).toEqual(['dist/**', 'build.log']);
    expect(test18.env).toEqual({ SHARED: '1', MATRIX_NODE: '18' });
    expect(test18.timeoutMs).toBeUndefined();
    expect(test18.artifacts).toBeUndefined();
  });

  test('a job whose when does not match the trigger is planned as skipped', () => {
    const branch = planFromWorkflowFile(FILE, { event: 'push', ref: 'refs/heads/feature/x' });
    expect(branch.jobs.find((j) => j.name === 'deploy')?.skipReason).toBe(
      'its when does not match this push',
    );
    const manual = planFromWorkflowFile(FILE, { event: 'manual', ref: 'refs/heads/main' });
    expect(manual.jobs.find((j) => j.name === 'deploy')?.skipReason).toBeDefined();
    expect(manual.jobs.filter((j) => j.skipReason)).toHaveLength(1);
  });

  test('cancel-superseded defaults to yes', () => {
    expect(planFromWorkflowFile('job "a" { step "x" run="true" }', { event: 'push' }).cancelSuperseded).toBe(
      true,
    );
  });

  test('an invalid file is a non-retryable InvalidWorkflowFile naming each error with its location', () => {
    let err: unknown;
    try {
      planFromWorkflowFile('job "a" {\n  needs "nope"\n  step "x" run="true"\n}\n', { event: 'push' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'InvalidWorkflowFile', nonRetryable: true });
    expect((err as Error).message).toMatch(/\.solstice\/workflow\.kdl:2:\d+: error: .*nope/);
  });
});

describe("loadPipelinePlan: only a missing file is the user's error", () => {
  const repos: TestRepo[] = [];
  const repo = (files: Record<string, string>): TestRepo => {
    const r = makeRepo(files);
    repos.push(r);
    return r;
  };
  afterAll(() => repos.forEach((r) => rmSync(r.dir, { recursive: true, force: true })));
  const plan = (r: { dir: string; sha: string }) =>
    loadPipelinePlan(
      { repoUrl: r.dir, commitSha: r.sha, event: 'push', label: 'local', gitProtocols: ['file'] },
      { plan: planInProcess },
    );

  test('a commit with a workflow file or job.sh is planned from it', async () => {
    const kdl = repo({
      [WORKFLOW_FILE_PATH]: 'job "a" { step "x" run="true" }\n',
      [JOB_SCRIPT_PATH]: 'true\n',
    });
    expect(await plan(kdl)).toMatchObject({ definition: WORKFLOW_FILE_PATH, jobs: [{ name: 'a' }] });
    const sh = repo({ [JOB_SCRIPT_PATH]: 'true\n' });
    expect(await plan(sh)).toMatchObject({ definition: JOB_SCRIPT_PATH, jobs: [{ name: 'job' }] });
  });

  test('a commit without either file is a non-retryable NoJobDefinition', async () => {
    const err = await plan(repo({ 'README.md': 'hi\n' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'NoJobDefinition', nonRetryable: true });
  });

  test('a commit git cannot read is a retryable infrastructure error, not NoJobDefinition', async () => {
    const r = repo({ [JOB_SCRIPT_PATH]: 'true\n' });
    const err = await plan({ dir: r.dir, sha: 'f'.repeat(40) }).catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(ApplicationFailure);
    expect(err).toBeInstanceOf(CommitUnreadableError);
    expect((err as Error).message).toMatch(
      /^cannot read commit ffffffffffff in the fetched repository \(.+\); check that the commit is still/,
    );
  });

  test('a repository that cannot be fetched is a retryable error too', async () => {
    const err = await plan({ dir: '/nonexistent/solstice-repo', sha: 'f'.repeat(40) }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(ApplicationFailure);
    expect((err as Error).message).toMatch(/^cannot fetch \/nonexistent\/solstice-repo: /);
  });
});

describe('pipeline helpers', () => {
  test('branchOf', () => {
    expect(branchOf('refs/heads/feature/x')).toBe('feature/x');
    expect(branchOf('refs/tags/v1')).toBeUndefined();
    expect(branchOf(undefined)).toBeUndefined();
  });

  test('the aggregate state of a pipeline', () => {
    expect(aggregateState(['success', 'skipped'], false)).toBe('success');
    expect(aggregateState(['success', 'failure', 'skipped', 'error'], false)).toBe('failure');
    expect(aggregateState(['success', 'error'], false)).toBe('error');
    expect(aggregateState(['cancelled', 'skipped', 'success'], false)).toBe('cancelled');
    expect(aggregateState(['failure'], true)).toBe('cancelled');
  });

  test('a JobRequest becomes one pipeline id, the same every time it is delivered', () => {
    const r = newJobRequest({
      source: 'forgejo',
      repoUrl: 'https://forge.example/o/app.git',
      commitSha: 'a'.repeat(40),
      ref: 'refs/heads/main',
      deliveryId: 'd-1',
    });
    const ids = pipelineIdsForRequest(r);
    expect(ids.workflowId).toMatch(/^pipeline\/app\/aaaaaaaaaaaa\//);
    expect(pipelineIdsForRequest({ ...r, request_id: 'other' })).toEqual(ids);
    expect(ids.pipelineId).toMatch(/^[0-9a-f-]{36}$/);
    expect(eventOfRequest(r)).toBe('push');
    expect(eventOfRequest({ ...r, ref: 'refs/tags/v1' })).toBe('tag');
    expect(eventOfRequest({ ...r, ref: 'refs/pull/3/head' })).toBe('pull_request');
    expect(eventOfRequest({ ...r, source: 'manual' })).toBe('manual');
    // `solstice enqueue --event push`: runs as a push, but each enqueue is a run of its own
    // (its delivery id is its identity; a forge event's key would dedupe a second enqueue).
    const asPush = { ...r, source: 'manual' as const, event: 'push' as const, delivery_id: 'enqueue-1' };
    expect(eventOfRequest(asPush)).toBe('push');
    expect(pipelineIdsForRequest(asPush).workflowId).toMatch(/\/manual-enqueue-1$/);
    expect(pipelineIdsForRequest({ ...asPush, delivery_id: 'enqueue-2' })).not.toEqual(
      pipelineIdsForRequest(asPush),
    );
  });

  test('pipelineInput fills defaults from the config', () => {
    const cfg = { taskQueue: 'q', jobTimeoutMs: 60_000, bootTimeoutMs: 5_000 };
    expect(pipelineInput(cfg, { source: 'manual', repoUrl: '/r', commitSha: 'b'.repeat(40) }, 'id')).toEqual({
      pipelineId: 'id',
      source: 'manual',
      event: 'manual',
      repoUrl: '/r',
      commitSha: 'b'.repeat(40),
      gitProtocols: ['https', 'ssh', 'file'],
      timeoutMs: 60_000,
      bootTimeoutMs: 5_000,
      maxMachineAttempts: 2,
    });
  });

  test("git may fetch a local path for an operator's enqueue, never for a forge's delivery", () => {
    const cfg = { taskQueue: 'q', jobTimeoutMs: 60_000, bootTimeoutMs: 5_000 };
    const forge = pipelineInput(cfg, { source: 'forgejo', repoUrl: '/r', commitSha: 'b'.repeat(40) }, 'id');
    expect(forge.gitProtocols).toEqual(['https', 'ssh']);
    const local = pipelineInput(
      { ...cfg, webhookLocalRepos: true },
      { source: 'github', repoUrl: '/r', commitSha: 'b'.repeat(40) },
      'id',
    );
    expect(local.gitProtocols).toContain('file');
  });

  test('a forge served over plain http is fetched over http, and only then', () => {
    const cfg = { taskQueue: 'q', jobTimeoutMs: 60_000, bootTimeoutMs: 5_000 };
    const input = (repoUrl: string) =>
      pipelineInput(cfg, { source: 'forgejo', repoUrl, commitSha: 'b'.repeat(40) }, 'id').gitProtocols;
    expect(input('http://forge.example/o/r.git')).toEqual(['https', 'ssh', 'http']);
    expect(input('https://forge.example/o/r.git')).toEqual(['https', 'ssh']);
  });
});

describe('loadPipelinePlan: Actions workflows when there is no .solstice file', () => {
  const repos: TestRepo[] = [];
  const repo = (files: Record<string, string>): TestRepo => {
    const r = makeRepo(files);
    repos.push(r);
    return r;
  };
  afterAll(() => repos.forEach((r) => rmSync(r.dir, { recursive: true, force: true })));
  const plan = (r: { dir: string; sha: string }, extra: Partial<PlanRequest> = {}) =>
    loadPipelinePlan(
      {
        repoUrl: r.dir,
        commitSha: r.sha,
        ref: 'refs/heads/main',
        event: 'push',
        label: 'local',
        gitProtocols: ['file'],
        ...extra,
      },
      { plan: planInProcess, actionsRunsOn: { local: ['ubuntu-latest'] } },
    );
  const wf = (name: string) =>
    `on: push\njobs:\n  ${name}:\n    runs-on: ubuntu-latest\n    steps: [{run: echo}]\n`;

  test('the first Actions folder with workflows is read; .solstice files win over it', async () => {
    expect(await plan(repo({ '.github/workflows/ci.yml': wf('gh') }))).toMatchObject({
      definition: '.github/workflows/ci.yml',
      cancelSuperseded: false,
      jobs: [{ name: 'ci/gh', runsOn: 'local' }],
    });
    const both = repo({ '.forgejo/workflows/ci.yml': wf('fj'), '.github/workflows/ci.yml': wf('gh') });
    expect((await plan(both)).jobs.map((j) => j.name)).toEqual(['ci/fj']);
    const withSh = repo({ '.forgejo/workflows/ci.yml': wf('fj'), [JOB_SCRIPT_PATH]: 'true\n' });
    expect(await plan(withSh)).toMatchObject({ definition: JOB_SCRIPT_PATH });
  });

  test('a workflow that would run and has an error fails the plan with file:line:col', async () => {
    const bad = repo({
      '.forgejo/workflows/ci.yml':
        'on: push\njobs:\n  a:\n    runs-on: docker\n    steps:\n      - uses: actions/cache@v4\n',
    });
    await expect(plan(bad)).rejects.toThrow(
      '.forgejo/workflows/ci.yml:6:15: error: uses: actions/cache@v4 is not supported',
    );
  });

  test('paths and paths-ignore filter on the files of the push (before..after)', async () => {
    const job = `jobs:\n  j:\n    runs-on: ubuntu-latest\n    steps: [{run: echo}]\n`;
    const r = repo({
      '.forgejo/workflows/src.yml': `on:\n  push:\n    paths: ['src/**', '!src/**/*.md']\n${job}`,
      '.forgejo/workflows/not-docs.yml': `on:\n  push:\n    paths-ignore: ['docs/**']\n${job}`,
      '.forgejo/workflows/always.yml': `on: push\n${job}`,
      'src/a.ts': '1',
      'docs/index.md': '1',
    });
    const names = async (beforeSha: string, sha: string) =>
      (await plan({ dir: r.dir, sha }, { beforeSha })).jobs.map((j) => j.name).sort();
    // src/notes/x.md is excluded by src.yml's `!` pattern, and is not under docs/.
    const notes = commitFiles(r.dir, { 'docs/index.md': '2', 'src/notes/x.md': '2' });
    expect(await names(r.sha, notes)).toEqual(['always/j', 'not-docs/j']);
    const docs = commitFiles(r.dir, { 'docs/index.md': '3' });
    expect(await names(notes, docs)).toEqual(['always/j']);
    const code = commitFiles(r.dir, { 'src/a.ts': '2' });
    expect(await names(docs, code)).toEqual(['always/j', 'not-docs/j', 'src/j']);
    // Several commits in one push: every file between before and after counts.
    expect(await names(r.sha, code)).toEqual(['always/j', 'not-docs/j', 'src/j']);
    // A new branch (before all zeros) or a before the repository no longer has: every filter matches.
    const all = ['always/j', 'not-docs/j', 'src/j'];
    expect(await names('0'.repeat(40), docs)).toEqual(all);
    expect(await names('1'.repeat(40), docs)).toEqual(all);
    // Tags do not look at paths (GitHub's rule).
    expect(
      (await plan({ dir: r.dir, sha: docs }, { beforeSha: r.sha, ref: 'refs/tags/v1' })).jobs.map(
        (j) => j.name,
      ),
    ).toHaveLength(3);
  });

  test('--workflow runs only that file, as workflow_dispatch; an unknown file is refused', async () => {
    const r = repo({
      '.forgejo/workflows/ci.yml': wf('a'),
      '.forgejo/workflows/deploy.yml':
        'on:\n  workflow_dispatch:\n    inputs: {target: {default: dev}}\njobs:\n  d:\n    runs-on: ubuntu-latest\n    steps: [{run: echo}]\n',
    });
    const p = await plan(r, {
      event: 'manual',
      dispatch: { workflow: '.forgejo/workflows/deploy.yml', inputs: { target: 'prod' } },
    });
    expect(p.jobs.map((j) => j.name)).toEqual(['deploy/d']);
    expect(JSON.parse(p.jobs[0].actions as string).contexts.inputs).toEqual({ target: 'prod' });
    await expect(
      plan(r, { event: 'manual', dispatch: { workflow: '.forgejo/workflows/nope.yml', inputs: {} } }),
    ).rejects.toThrow(/there is no workflow \.forgejo\/workflows\/nope\.yml/);
  });
});
