/** JobRequest v1: validation, and the ids derived from a request (stable forever). */
import { backoffDelay } from '../../../ingress/amqp';
import { jobIdFor, newJobRequest, parseJobRequest, uuidV5, workflowIdFor } from '../../../model/job-request';
import { normalizeRepoUrl } from '../../../model/repo-url';

const base = {
  source: 'github' as const,
  repoUrl: 'https://github.com/Codertocat/Hello-World.git',
  commitSha: '0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c',
  ref: 'refs/heads/main',
};

test('uuidV5 matches the RFC 9562 test vector', () => {
  // DNS namespace, "www.example.com" (RFC 9562 appendix A.4).
  expect(uuidV5('www.example.com', '6ba7b810-9dad-11d1-80b4-00c04fd430c8')).toBe(
    '2ed6657d-e927-568b-95e1-2665a8aea6a2',
  );
});

test('the same delivery gives the same workflow and job id; another delivery does not', () => {
  const a = newJobRequest({ ...base, deliveryId: '72d3162e-cc78-11e3-81ab-4c9367dc0958' });
  const again = newJobRequest({ ...base, deliveryId: '72d3162e-cc78-11e3-81ab-4c9367dc0958' });
  const other = newJobRequest({ ...base, deliveryId: 'a0d3162e-cc78-11e3-81ab-4c9367dc0958' });
  expect(a.request_id).not.toBe(again.request_id);
  expect(workflowIdFor(a)).toBe('job/hello-world/0d1a26e67d8f/github-72d3162e-cc78-11e3-81ab-4c9367dc0958');
  expect(workflowIdFor(again)).toBe(workflowIdFor(a));
  expect(jobIdFor(workflowIdFor(again))).toBe(jobIdFor(workflowIdFor(a)));
  expect(workflowIdFor(other)).not.toBe(workflowIdFor(a));
});

test('without a delivery id the event itself (repo however spelled, sha, ref) is the key', () => {
  const a = newJobRequest(base);
  const b = newJobRequest({ ...base, repoUrl: 'git@github.com:codertocat/hello-world' });
  const otherRef = newJobRequest({ ...base, ref: 'refs/heads/dev' });
  expect(workflowIdFor(a)).toMatch(/^job\/hello-world\/0d1a26e67d8f\/event-[0-9a-f]{20}$/);
  expect(workflowIdFor(b)).toBe(workflowIdFor(a));
  expect(workflowIdFor(otherRef)).not.toBe(workflowIdFor(a));
  expect(normalizeRepoUrl('HTTPS://GitHub.com/Codertocat/Hello-World.git/')).toBe(
    'github.com/codertocat/hello-world',
  );
});

test('delivery ids with odd characters stay distinct and safe in the id', () => {
  const a = newJobRequest({ ...base, deliveryId: 'a/b c' });
  const b = newJobRequest({ ...base, deliveryId: 'a_b_c' });
  expect(workflowIdFor(a)).toMatch(/\/github-a_b_c-[0-9a-f]{8}$/);
  expect(workflowIdFor(a)).not.toBe(workflowIdFor(b));
});

test('a forge event is its content: a new delivery id of the same event is the same run, within the window', () => {
  const at = new Date('2026-12-01T10:10:00Z');
  const push = { ...base, event: 'push' as const, action: undefined };
  const a = newJobRequest({ ...push, deliveryId: 'd-1' }, at);
  const replay = newJobRequest({ ...push, deliveryId: 'd-2' }, new Date('2026-12-01T10:40:00Z'));
  expect(workflowIdFor(replay)).toBe(workflowIdFor(a));
  expect(workflowIdFor(a)).toMatch(/^job\/hello-world\/0d1a26e67d8f\/github-[0-9a-f]{20}-w\d+$/);
  // Anything that makes it another event makes it another run.
  const pr = { ...base, event: 'pull_request' as const, ref: 'refs/pull/3/head', prNumber: 3 };
  const opened = newJobRequest({ ...pr, action: 'opened' }, at);
  const reopened = newJobRequest({ ...pr, action: 'reopened' }, at);
  const otherPr = newJobRequest({ ...pr, action: 'opened', prNumber: 4, ref: 'refs/pull/4/head' }, at);
  const otherSha = newJobRequest({ ...push, commitSha: 'f'.repeat(40) }, at);
  const ids = [a, opened, reopened, otherPr, otherSha].map((r) => workflowIdFor(r));
  expect(new Set(ids).size).toBe(5);
  // Outside the window it is a new run; the window before names where a replay just after
  // the window's edge finds the first run (the bridge checks it).
  const later = newJobRequest({ ...push, deliveryId: 'd-3' }, new Date('2026-12-01T11:20:00Z'));
  expect(workflowIdFor(later)).not.toBe(workflowIdFor(a));
  expect(workflowIdFor(later, 'job', 60 * 60_000, 1)).toBe(workflowIdFor(a));
  expect(workflowIdFor(replay, 'job', 10 * 60_000)).not.toBe(workflowIdFor(a, 'job', 10 * 60_000));
});

test('parseJobRequest accepts v1, drops unknown fields, and says what is wrong otherwise', () => {
  const r = newJobRequest(base);
  const ok = parseJobRequest(JSON.stringify({ ...r, future_field: 1 }), { schema_version: 'jobrequest.v1' });
  expect(ok).toEqual({ ok: true, request: r });
  expect(parseJobRequest('{', {})).toMatchObject({ ok: false, reason: expect.stringMatching(/not JSON/) });
  expect(parseJobRequest(JSON.stringify(r), { schema_version: 'jobrequest.v2' })).toMatchObject({
    ok: false,
  });
  const missing = parseJobRequest(JSON.stringify({ ...r, commit_sha: undefined, submitted_at: 'yesterday' }));
  expect(missing.ok).toBe(false);
  if (!missing.ok) expect(missing.reason).toMatch(/commit_sha.*submitted_at|submitted_at.*commit_sha/);
  expect(() => newJobRequest({ ...base, commitSha: 'abc' })).toThrow();
});

test('backoff grows exponentially up to the cap, with jitter in [base/2, base]', () => {
  expect(backoffDelay(1, 100, 1000, () => 0)).toBe(50);
  expect(backoffDelay(1, 100, 1000, () => 1)).toBe(100);
  expect(backoffDelay(3, 100, 1000, () => 1)).toBe(400);
  expect(backoffDelay(10, 100, 1000, () => 1)).toBe(1000);
  expect(backoffDelay(10, 100, 1000, () => 0)).toBe(500);
});
