import { commitUrl, repoDisplayName } from '../../../model/repo-url';
import { runDetails, runSummary, searchAttributesFor } from '../../../workflows/web-ui';

test.each([
  ['https://github.com/acme/app.git', 'acme/app'],
  ['https://forgejo.example/acme/app/', 'acme/app'],
  ['git@github.com:acme/app.git', 'acme/app'],
  ['ssh://git@host:2222/group/sub/app.git', 'sub/app'],
  ['/tmp/solstice-repo-x1', 'solstice-repo-x1'],
  ['file:///srv/git/app.git', 'app'],
])('repoDisplayName(%s) is %s', (url, name) => {
  expect(repoDisplayName(url)).toBe(name);
});

test('summary and attributes of a pipeline job', () => {
  const sha = 'abcdef0123456789abcdef0123456789abcdef01';
  const facts = { repoUrl: 'https://github.com/acme/app.git', commitSha: sha, ref: 'refs/heads/main' };
  expect(runSummary({ ...facts, job: 'test' })).toBe('acme/app@abcdef012345 · test');
  expect(runSummary(facts)).toBe('acme/app@abcdef012345 · pipeline');
  const attrs = searchAttributesFor({ ...facts, job: 'test', label: 'debian-12', state: 'queued' });
  expect(Object.fromEntries(attrs.map((a) => [a.key.name, a.value]))).toEqual({
    SolsticeRepo: 'acme/app',
    SolsticeBranch: 'main',
    SolsticeCommit: sha,
    SolsticeJob: 'test',
    SolsticeLabel: 'debian-12',
    SolsticeState: 'queued',
  });
  // Tags have no branch; the attribute is left out rather than set empty.
  const tag = searchAttributesFor({ ...facts, ref: 'refs/tags/v1', state: 'running' });
  expect(tag.map((a) => a.key.name)).not.toContain('SolsticeBranch');
});

test('details link the commit on its forge and the job page', () => {
  const sha = 'abcdef0123456789abcdef0123456789abcdef01';
  expect(commitUrl('/tmp/repo', sha)).toBeUndefined();
  const md = runDetails({
    repoUrl: 'https://github.com/acme/app.git',
    commitSha: sha,
    jobId: 'j-1',
    publicUrl: 'https://ci.example/',
  });
  expect(md).toContain(`[${sha}](https://github.com/acme/app/commit/${sha})`);
  expect(md).toContain('[j-1](https://ci.example/jobs/j-1)');
  expect(runDetails({ repoUrl: '/tmp/repo', commitSha: sha, jobId: 'j-1' })).toContain('**Job** j-1');
});

test('details never show credentials of the clone URL', () => {
  const md = runDetails({
    repoUrl: 'https://ci-bot:s3cr3t-token@forge.example/acme/app.git',
    commitSha: 'a'.repeat(40),
  });
  expect(md).toContain('**Repository** https://forge.example/acme/app.git');
  expect(md).not.toMatch(/s3cr3t-token|ci-bot/);
});
