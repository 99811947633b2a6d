/** A push delivery carries its `before` commit to the pipeline, for Actions `paths` filters. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { interpret, type Forge } from '../../../forges/webhook';
import { pipelineInput } from '../../../ingress/pipeline-start';

function push(forge: Forge, fixture: string, over: Record<string, unknown> = {}) {
  const payload = {
    ...JSON.parse(
      readFileSync(path.resolve(__dirname, `../../../forges/${forge}/fixtures/${fixture}.json`), 'utf8'),
    ),
    ...over,
  };
  const meta = { event: 'push', deliveryId: 'd-1', signature: undefined, signatureHeader: 'x' };
  const outcome = interpret(forge, meta, payload);
  if (outcome.kind !== 'enqueue') throw new Error(`not enqueued: ${JSON.stringify(outcome)}`);
  return outcome.request;
}

test("the push's before commit reaches the JobRequest, and from it the pipeline input", () => {
  expect(push('forgejo', 'forgejo-push').before_sha).toBe('28e1879d029cb852e4844d9c718537df08844e03');
  expect(push('github', 'github-push').before_sha).toBe('6113728f27ae82c7b1a177c8d03f9e96e0adf246');
  const cfg = { taskQueue: 'q', jobTimeoutMs: 1, bootTimeoutMs: 1 };
  const input = pipelineInput(
    cfg,
    { source: 'forgejo', repoUrl: 'r', commitSha: 'a'.repeat(40), beforeSha: 'b'.repeat(40) },
    'p',
  );
  expect(input.beforeSha).toBe('b'.repeat(40));
});

test('a new branch (before all zeros) or a malformed before has none: every paths filter matches', () => {
  expect(push('forgejo', 'forgejo-push', { before: '0'.repeat(40) }).before_sha).toBeUndefined();
  expect(push('github', 'github-push', { before: 'nope' }).before_sha).toBeUndefined();
  expect(push('github', 'github-push', { before: undefined }).before_sha).toBeUndefined();
});

test('an annotated tag push runs the commit the tag points to (head_commit), not the tag object (after)', () => {
  const tagObject = 'c'.repeat(40);
  const commit = 'd'.repeat(40);
  for (const forge of ['forgejo', 'github'] as const) {
    const fixture = forge === 'forgejo' ? 'forgejo-push' : 'github-push';
    const tag = push(forge, fixture, { ref: 'refs/tags/v1', after: tagObject, head_commit: { id: commit } });
    expect(tag.commit_sha).toBe(commit);
    // A branch's after is its commit, whatever head_commit says.
    const branch = push(forge, fixture, {
      ref: 'refs/heads/main',
      after: tagObject,
      head_commit: { id: commit },
    });
    expect(branch.commit_sha).toBe(tagObject);
    // No usable head_commit: after, as before.
    expect(
      push(forge, fixture, { ref: 'refs/tags/v1', after: tagObject, head_commit: null }).commit_sha,
    ).toBe(tagObject);
  }
});
