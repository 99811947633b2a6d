/** One parser for every repository URL spelling, and the workflow ids built from it. */
import { pipelineIdsForRequest, pipelineWorkflowId } from '../../../ingress/pipeline-start';
import { newJobRequest, readableWorkflowId } from '../../../model/job-request';
import { redactErrorUrls, redactUrlPassword, redactUrlsInText } from '../../../model/redact-url';
import {
  commitUrl,
  forgeRepoOf,
  gitTransportOf,
  isLocalRepo,
  localRepoPath,
  normalizeRepoUrl,
  parseRepoLocation,
  repoAtCommit,
  repoDisplayName,
  repoIdSegment,
  repoUrlWithoutCredentials,
} from '../../../model/repo-url';

test.each([
  ['https://github.com/acme/app.git', 'url', 'github.com', '/acme/app.git'],
  ['ssh://git@host:2222/group/app', 'url', 'host:2222', '/group/app'],
  ['git@github.com:acme/app.git', 'scp', 'github.com', 'acme/app.git'],
  ['forge.example:acme/app', 'scp', 'forge.example', 'acme/app'],
  ['file:///srv/git/app.git', 'url', '', '/srv/git/app.git'],
])('parseRepoLocation(%s) is a %s URL on %s', (raw, form, host, path) => {
  expect(parseRepoLocation(raw)).toMatchObject({
    form,
    path,
    ...(form === 'url' || form === 'scp' ? { host } : {}),
  });
});

test('local paths are paths, URLs and scp-like SSH are not', () => {
  for (const p of ['/tmp/repo', '../app', '.', './dir:with-colon']) expect(isLocalRepo(p)).toBe(true);
  for (const u of ['https://h/o/r', 'file:///srv/r', 'git@h:o/r', 'h:o/r'])
    expect(isLocalRepo(u)).toBe(false);
  // What a machine cannot fetch by itself: folders on this host, however given.
  expect(localRepoPath('/srv/git/app')).toBe('/srv/git/app');
  expect(localRepoPath('file:///srv/git/app')).toBe('/srv/git/app');
  for (const u of ['https://h/o/r', 'git@h:o/r', 'app']) expect(localRepoPath(u)).toBeUndefined();
});

test('every spelling of one repository normalises, displays and names a workflow id alike', () => {
  const spellings = [
    'https://GitHub.com/Codertocat/Hello-World.git',
    'https://x-access-token:ghs_1@github.com/codertocat/hello-world/',
    'git@github.com:Codertocat/Hello-World.git',
  ];
  for (const s of spellings) {
    expect(normalizeRepoUrl(s)).toBe('github.com/codertocat/hello-world');
    expect(repoIdSegment(s)).toBe('hello-world');
    expect(repoDisplayName(s).toLowerCase()).toBe('codertocat/hello-world');
  }
  expect(repoIdSegment('/tmp/My Repo')).toBe('my-repo');
  expect(repoAtCommit('git@h:acme/app.git', '0123456789abcdef')).toBe('acme/app@0123456789ab');
  expect(repoDisplayName('https://forge.example/o/my%20app.git')).toBe('o/my app');
});

test('forge origin, owner and repository; none for local repositories', () => {
  expect(forgeRepoOf('ssh://git@forge.example:2222/o/app.git')).toEqual({
    origin: 'https://forge.example',
    owner: 'o',
    repo: 'app',
  });
  expect(forgeRepoOf('git://forge.example/o/app')).toMatchObject({ origin: 'https://forge.example' });
  expect(forgeRepoOf('https://forge.example/o/app.git/')).toMatchObject({ repo: 'app' });
  expect(forgeRepoOf('file:///srv/git/o/app')).toBeUndefined();
  expect(forgeRepoOf('https://forge.example/app')).toBeUndefined();
});

test('credentials never reach a commit link, a span or a message', () => {
  const sha = 'a'.repeat(40);
  expect(commitUrl('https://u:tok@forge.example/o/app.git?x=1', sha)).toBe(
    `https://forge.example/o/app/commit/${sha}`,
  );
  expect(commitUrl('git@forge.example:o/app', sha)).toBeUndefined();
  expect(repoUrlWithoutCredentials('user:tok@forge.example:o/app')).toBe('forge.example:o/app');
  expect(redactUrlPassword('amqp://guest:guest@127.0.0.1:5672/%2f')).toBe(
    'amqp://guest:***@127.0.0.1:5672/%2f',
  );
  expect(redactUrlPassword('amqp://guest@127.0.0.1')).toBe('amqp://guest@127.0.0.1');
  expect(redactUrlPassword('not a url')).toBeUndefined();
  expect(redactUrlsInText('see postgresql://me:pw@db/ci and https://t@h/r')).toBe(
    'see postgresql://***@db/ci and https://***@h/r',
  );
  const err = redactErrorUrls(new Error('Command failed: git fetch -- https://x:ghs_1@h/o/r'));
  expect(`${err.message}\n${err.stack}`).not.toContain('ghs_1');
});

test('the CLI and the bridge spell a workflow id the same way for the same request', () => {
  const sha = '0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c';
  for (const repoUrl of [
    'https://github.com/Codertocat/Hello-World.git',
    '/tmp/Hello World',
    'git@h:o/App',
  ]) {
    const r = newJobRequest({ source: 'manual', repoUrl, commitSha: sha, ref: sha, deliveryId: 'enqueue-1' });
    const bridge = pipelineIdsForRequest(r).workflowId;
    // `solstice enqueue --direct` starts the same request the bridge would (startPipelineForRequest).
    expect(bridge).toBe(readableWorkflowId('pipeline', { repoUrl, commitSha: sha }, 'manual-enqueue-1'));
    // Reruns and bare starts name the repository and commit with the same segments.
    const prefix = bridge.slice(0, bridge.lastIndexOf('/') + 1);
    expect(pipelineWorkflowId({ repoUrl, commitSha: sha }, 'p-1')).toBe(`${prefix}p-1`);
  }
});

test.each([
  ['https://forge.example/o/r.git', 'https'],
  ['http://forge.example/o/r.git', 'http'],
  ['ssh://git@host:2222/o/r', 'ssh'],
  ['git@host:o/r.git', 'ssh'],
  ['git://host/o/r', 'git'],
  ['file:///srv/git/r', 'file'],
  ['/srv/git/r', 'file'],
  ['./dir:x', 'file'],
  ['ext::sh -c true', 'ext'],
  ['fd::3', 'fd'],
])("git fetches %s over '%s' (what GIT_ALLOW_PROTOCOL decides)", (url, transport) => {
  expect(gitTransportOf(url)).toBe(transport);
});
