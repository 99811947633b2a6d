/**
 * A Forgejo Actions workflow run end to end on the local provider (real Temporal, PostgreSQL, log
 * service, runner and processes). The expected results are what GitHub's documentation says the
 * same file does:
 *
 * - `needs` orders the jobs; a job whose `if` is false is skipped ("jobs.<job_id>.if");
 * - the matrix is the product minus `exclude` ("Excluding matrix configurations": 2×2 − 1 = 3 jobs);
 * - a step after a failing one is skipped unless its `if` uses `failure()` ("Status check
 *   functions"), and the job fails;
 * - `$GITHUB_ENV` sets a variable for the steps after, not the step that writes it; `$GITHUB_OUTPUT`
 *   sets `steps.<id>.outputs` ("Workflow commands: Environment files");
 * - `::add-mask::` masks the value in every later line ("Masking a value in a log");
 * - `jobs.<id>.outputs` reach the jobs that need it as `needs.<id>.outputs` ("Passing information
 *   between jobs").
 *
 * And a repository that also has `.solstice/workflow.kdl` runs the KDL file only.
 */
import { makeRepo } from '../../support/git-repo';
import { startHarness, type Harness } from '../../support/harness';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
  await h.startWorker();
});

afterAll(async () => {
  await h?.close();
});

const WORKFLOW = `name: ci
on:
  push:
    branches: [main]
env:
  GREETING: hello
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      version: \${{ steps.version.outputs.version }}
    steps:
      - uses: https://code.forgejo.org/actions/checkout@v4
      - id: version
        run: echo "version=1.2.3" >> "$GITHUB_OUTPUT"
      - name: set env
        run: |
          echo "FROM_STEP=$GREETING-world" >> "$GITHUB_ENV"
          echo "in the same step: [\${FROM_STEP:-unset}]"
      - name: use env and output
        run: |
          echo "next step: $FROM_STEP, version \${{ steps.version.outputs.version }}"
      - name: mask
        run: |
          echo "before - not-yet-secret"
          echo "::add-mask::supersecretvalue"
          echo "the value is supersecretvalue"
      - name: group
        run: |
          echo "::group::Details"
          echo inside the group
          echo "::endgroup::"
  test:
    needs: build
    runs-on: ubuntu-latest
    strategy:
      fail-fast: false
      matrix:
        os: [a, b]
        node: [18, 20]
        exclude:
          - os: b
            node: 18
    steps:
      - run: echo "os=\${{ matrix.os }} node=\${{ matrix.node }} version=\${{ needs.build.outputs.version }}"
      - name: fails on a/18
        if: matrix.os == 'a' && matrix.node == 18
        run: exit 3
      - name: only on failure
        if: failure()
        run: echo "cleanup after failure"
      - name: not after failure
        run: echo "after the checks"
  deploy:
    needs: [build]
    if: github.ref == 'refs/heads/release'
    runs-on: ubuntu-latest
    steps:
      - run: echo deploying
`;

async function logOf(jobId: string | null): Promise<string[]> {
  return (await h.jobs.logLinesAfter(jobId as string, 0, 1000)).map((l) => l.text);
}

test('a three-job workflow with needs, a matrix with exclude, if, file commands and a mask', async () => {
  const repo = makeRepo({ '.forgejo/workflows/ci.yml': WORKFLOW, 'README.md': 'x\n' });
  const { pipelineId, workflowId } = await h.startPipeline(repo.dir, repo.sha, { ref: 'refs/heads/main' });
  const p = await h.pipelineResult(workflowId, pipelineId);
  // One matrix job failed (fail-fast is off, so the others ran to the end).
  expect(p.state).toBe('failure');
  const jobs = Object.fromEntries((await h.pipelines.listJobs(pipelineId)).map((j) => [j.name, j]));
  expect(Object.values(jobs).map((j) => [j.name, j.state, j.needs])).toEqual([
    ['ci/build', 'success', []],
    ['ci/test (a, 18)', 'failure', ['ci/build']],
    ['ci/test (a, 20)', 'success', ['ci/build']],
    ['ci/test (b, 20)', 'success', ['ci/build']],
    ['ci/deploy', 'skipped', ['ci/build']],
  ]);

  const build = await logOf(jobs['ci/build'].jobId);
  expect(build).toContain('in the same step: [unset]');
  expect(build).toContain('next step: hello-world, version 1.2.3');
  expect(build).toContain('before - not-yet-secret');
  expect(build).toContain('the value is ***');
  expect(build.join('\n')).not.toContain('supersecretvalue');
  expect(build).toEqual(expect.arrayContaining(['::group::Details', 'inside the group', '::endgroup::']));

  const failed = await logOf(jobs['ci/test (a, 18)'].jobId);
  // needs.build.outputs.version: the output build's step wrote to $GITHUB_OUTPUT.
  expect(failed).toContain('os=a node=18 version=1.2.3');
  expect(failed).toContain('cleanup after failure');
  expect(failed).not.toContain('after the checks');
  const steps = (await h.jobs.listSteps(jobs['ci/test (a, 18)'].jobId as string)).map((s) => [
    s.name,
    s.outcome,
  ]);
  expect(steps).toEqual([
    [expect.stringContaining('echo "os='), 'success'],
    ['fails on a/18', 'failure'],
    ['only on failure', 'success'],
    ['not after failure', 'skipped'],
  ]);

  const passed = await logOf(jobs['ci/test (b, 20)'].jobId);
  expect(passed).toContain('os=b node=20 version=1.2.3');
  expect(passed).toContain('after the checks');
  expect(passed).not.toContain('cleanup after failure');
  const passedSteps = (await h.jobs.listSteps(jobs['ci/test (b, 20)'].jobId as string)).map((s) => s.outcome);
  expect(passedSteps).toEqual(['success', 'skipped', 'skipped', 'success']);
});

test('with .solstice/workflow.kdl as well, the KDL file wins', async () => {
  const repo = makeRepo({
    '.forgejo/workflows/ci.yml': WORKFLOW,
    '.solstice/workflow.kdl': 'job "native" { step "hi" run="echo native" }\n',
  });
  const { pipelineId, workflowId } = await h.startPipeline(repo.dir, repo.sha, { ref: 'refs/heads/main' });
  const p = await h.pipelineResult(workflowId, pipelineId);
  expect(p.state).toBe('success');
  const jobs = await h.pipelines.listJobs(pipelineId);
  expect(jobs.map((j) => [j.name, j.state])).toEqual([['native', 'success']]);
  expect(await logOf(jobs[0].jobId)).toContain('native');
});
