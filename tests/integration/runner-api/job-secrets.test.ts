/**
 * Secrets end to end: a workflow file names secrets from the orchestrator's secret store
 * (SOLSTICE_SECRETS_FILE); the steps get them as variables; the stored log shows `***` for them
 * (multi-line too) and for secret-named env variables; the log service masks the store's values
 * even when the runner did not know them; values never appear in the workflow histories.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeRepo } from '../../support/git-repo';
import { startHarness, type Harness } from '../../support/harness';

let h: Harness;
let dir: string;

const DEPLOY = 'dEpL0y-s3cret-value';
const CERT = '-----BEGIN TEST KEY-----\nQUJDREVGR0hJSktMTU5PUA==\n}\n-----END TEST KEY-----';
const SERVER_ONLY = 'only-the-server-knows-this';

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-secrets-'));
  const file = path.join(dir, 'secrets.yaml');
  fs.writeFileSync(
    file,
    [
      `DEPLOY_TOKEN: ${DEPLOY}`,
      'CERT: |',
      ...CERT.split('\n').map((l) => `  ${l}`),
      'PIN: "12"',
      `SERVER_ONLY: ${SERVER_ONLY}`,
    ].join('\n') + '\n',
    { mode: 0o600 },
  );
  h = await startHarness({ secretsFile: file });
  await h.startWorker();
});

afterAll(async () => {
  await h?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** A workflow's history as text with every payload decoded (their data are bytes or base64). */
async function historyText(workflowId: string): Promise<string> {
  const history = await h.client.workflow.getHandle(workflowId).fetchHistory();
  return JSON.stringify(history, (k, v: unknown) => {
    if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
    if (k === 'data' && typeof v === 'string') return Buffer.from(v, 'base64').toString('utf8');
    return v;
  });
}

test('named secrets reach the steps, are masked in the log, and stay out of the workflow history', async () => {
  const repo = makeRepo({
    '.solstice/workflow.kdl': `
      job "deploy" {
        secrets "DEPLOY_TOKEN" "CERT" "PIN"
        env API_KEY="key-from-the-env-1" PLAIN="shown"
        step "use" run="sh ./use.sh"
      }
    `,
    'use.sh': [
      'echo "token=$DEPLOY_TOKEN"',
      'printf "%s\\n" "$CERT"',
      'echo "pin=$PIN key=$API_KEY plain=$PLAIN"',
      `echo "literal=${SERVER_ONLY}"`,
      '[ "$DEPLOY_TOKEN" = "' + DEPLOY + '" ] && echo "the step got the real value"',
    ].join('\n'),
  });
  const { pipelineId, workflowId } = await h.startPipeline(repo.dir, repo.sha);
  const p = await h.pipelineResult(workflowId, pipelineId);
  expect(p.state).toBe('success');
  const [job] = await h.pipelines.listJobs(pipelineId);
  const texts = (await h.jobs.logLinesAfter(job.jobId as string, 0, 1000)).map((l) => l.text);
  expect(texts).toContain('not masked in this log (shorter than 4 characters): PIN');
  const out = texts.slice(texts.indexOf('token=***'));
  expect(out.slice(0, 9)).toEqual([
    'token=***',
    '***',
    '***',
    '***',
    '***',
    '', // the block scalar's final newline is part of the value
    'pin=12 key=*** plain=shown',
    // The runner was not given SERVER_ONLY; the log service masks every value of the store.
    'literal=***',
    'the step got the real value',
  ]);
  const all = texts.join('\n');
  for (const value of [DEPLOY, SERVER_ONLY, 'QUJDREVGR0hJSktMTU5PUA==', 'key-from-the-env-1']) {
    expect(all).not.toContain(value);
  }

  const jobRow = await h.jobs.getJob(job.jobId as string);
  const histories = (await historyText(workflowId)) + (await historyText(jobRow?.workflowId as string));
  // Names travel (which also shows the payloads were decoded); values do not.
  expect(histories.includes('DEPLOY_TOKEN')).toBe(true);
  expect(histories.includes(DEPLOY)).toBe(false);
  expect(histories.includes('QUJDREVGR0hJSktMTU5PUA==')).toBe(false);
});

test('a job naming a secret the store does not have ends in error, naming it', async () => {
  const repo = makeRepo({
    '.solstice/workflow.kdl': 'job "x" {\n  secrets "NOT_THERE_TOKEN"\n  step "s" run="true"\n}\n',
  });
  const { pipelineId, workflowId } = await h.startPipeline(repo.dir, repo.sha);
  const p = await h.pipelineResult(workflowId, pipelineId);
  expect(p.state).not.toBe('success');
  const [job] = await h.pipelines.listJobs(pipelineId);
  const row = await h.jobs.getJob(job.jobId as string);
  expect(row?.state).toBe('error');
  expect(row?.message).toContain('NOT_THERE_TOKEN');
});
