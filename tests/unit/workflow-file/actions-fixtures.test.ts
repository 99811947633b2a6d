/**
 * Real workflows of eight public repositories (tests/fixtures/actions/<repo>/, each file names its
 * source): each one's expanded job list and its "not supported" errors are pinned in
 * tests/fixtures/actions/expected-plans.json, for a push of the repository's main branch.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { pickWorkflowFiles, planActions } from '../../../workflow-file/actions';
import { ACTIONS_WORKFLOW_DIRS } from '../../../model/job-definition-paths';

const ROOT = path.join(__dirname, '../../fixtures/actions');
const BRANCH: Record<string, string> = {
  dashcap: 'main',
  rustnzb: 'main',
  flask: 'main',
  fd: 'master',
  fzf: 'master',
  jq: 'master',
  just: 'master',
  ripgrep: 'master',
};
const expected = JSON.parse(readFileSync(path.join(ROOT, 'expected-plans.json'), 'utf8')) as Record<
  string,
  { jobs: string[]; errors: Record<string, string[]> }
>;

/** The codes docs/actions.md documents for what Solstice does not run. */
const NOT_SUPPORTED = new Set(['unsupported', 'unsupported-action']);

/** Every file the fixture has under the Actions folders. */
function allFiles(repo: string): string[] {
  return ACTIONS_WORKFLOW_DIRS.flatMap((dir) => {
    try {
      return readdirSync(path.join(ROOT, repo, dir)).map((n) => `${dir}/${n}`);
    } catch {
      return [];
    }
  });
}

/** What discovery reads, as activities/pipeline-plan.ts does. */
function filesOf(repo: string): { path: string; text: string }[] {
  return pickWorkflowFiles(allFiles(repo)).map((p) => ({
    path: p,
    text: readFileSync(path.join(ROOT, repo, p), 'utf8'),
  }));
}

test('discovery reads the first Actions folder that has workflows, as Forgejo does', () => {
  // dashcap has both .forgejo/workflows and .github/workflows: Forgejo runs only the former.
  expect(pickWorkflowFiles(allFiles('dashcap'))).toEqual(['.forgejo/workflows/ci.yml']);
  expect(
    pickWorkflowFiles([
      '.gitea/workflows/a.yaml',
      '.github/workflows/b.yml',
      '.gitea/workflows/x/c.yml',
      '.gitea/workflows/README.md',
    ]),
  ).toEqual(['.gitea/workflows/a.yaml']);
  expect(pickWorkflowFiles(['.github/workflows/b.yml'])).toEqual(['.github/workflows/b.yml']);
  expect(pickWorkflowFiles(['README.md'])).toEqual([]);
});

test('there are eight repositories, each file with its source', () => {
  expect(Object.keys(BRANCH).sort()).toEqual(Object.keys(expected).sort());
  expect(Object.keys(BRANCH)).toHaveLength(8);
  for (const repo of Object.keys(BRANCH))
    for (const p of allFiles(repo))
      expect(readFileSync(path.join(ROOT, repo, p), 'utf8').split('\n')[0]).toMatch(
        /^# Source: https:\/\/github\.com\/.+\/blob\/[0-9a-f]{40}\//,
      );
});

describe.each(Object.keys(BRANCH))('%s', (repo) => {
  test('expands to the pinned jobs, with only documented "not supported" errors', async () => {
    const plan = await planActions(
      filesOf(repo),
      { event: 'push', ref: `refs/heads/${BRANCH[repo]}`, sha: 'abc' },
      {
        evenWithErrors: true,
        runsOn: { 'debian-12': ['ubuntu-latest', 'docker', 'ubuntu-24.04', 'ubuntu-22.04'] },
      },
    );
    const jobs = plan.jobs.map(
      (j) =>
        `${j.name} → ${j.runsOn}${j.needs.length ? ` needs ${j.needs.join(' + ')}` : ''}${j.skipReason ? ' (skipped)' : ''}`,
    );
    expect(jobs).toEqual(expected[repo].jobs);
    const errors = Object.fromEntries(
      plan.errors.map((e) => [
        e.path,
        e.diagnostics.map(
          (d) =>
            `${d.line}:${d.column} ${d.code}: ${d.message.replace(/ is not supported: Solstice runs only actions\/checkout and actions\/upload-artifact itself/, '')}`,
        ),
      ]),
    );
    expect(errors).toEqual(expected[repo].errors);
    for (const e of plan.errors) for (const d of e.diagnostics) expect(NOT_SUPPORTED).toContain(d.code);
  });
});
