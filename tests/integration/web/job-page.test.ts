/**
 * The job page: a real job on the local provider watched in headless Chromium (lines appear
 * while it runs, the artifact link downloads the uploaded bytes), and a 20 MB log inserted
 * straight into the database, whose page stays small and whose raw log streams complete.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { FsBlobStore } from '../../../storage/blob-store';
import { createLogger } from '../../../platform/logger';
import { startJobPage, type RunningJobPage } from '../../../web/job-page/server';
import { launchBrowser } from '../../support/browser';
import { makeRepo } from '../../support/git-repo';
import { startHarness, type Harness } from '../../support/harness';
import { gatePath, waitFor } from '../../support/wait';

let h: Harness;
let page: RunningJobPage;
let tmp: string;

beforeAll(async () => {
  h = await startHarness();
  await h.startWorker();
  const log = createLogger('test');
  log.level = 'warn';
  page = await startJobPage({
    addr: '127.0.0.1:0',
    jobs: h.jobs,
    blobs: new FsBlobStore(h.cfg.blobFsRoot),
    log,
    pollMs: 100,
  });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-job-page-test-'));
});

afterAll(async () => {
  await page?.close();
  await h?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const lineText = (n: number) => `line ${n} ${'x'.repeat(190)}`;

/** A job that exists in the database only, with `lines` log lines of about 200 bytes. */
async function jobWithLog(lines: number, state: 'success' | 'running'): Promise<string> {
  const jobId = randomUUID();
  await h.jobs.recordJob(
    {
      jobId,
      source: 'manual',
      repoUrl: '/repo',
      commitSha: 'abcdef1234567',
      label: 'local',
      timeoutMs: 1,
      bootTimeoutMs: 1,
      maxMachineAttempts: 1,
    },
    `test-page/${jobId}`,
  );
  for (let from = 1; from <= lines; from += 5000) {
    const batch = [];
    for (let seq = from; seq < from + 5000 && seq <= lines; seq++)
      batch.push({ seq, stream: 'stdout', text: lineText(seq), time: new Date() });
    await h.jobs.appendLogLines(jobId, batch);
  }
  if (state === 'success') {
    await h.jobs.finalize(jobId, { state: 'success', exitCode: 0 });
    // As finalizeJob does: the log moves to the blob store and its chunks leave PostgreSQL.
    await h.jobs.logs.archive(jobId);
  } else await h.jobs.markRunning(jobId);
  return jobId;
}

describe('a 20 MB log, finished: served from the blob store', () => {
  const LINES = 100_000;
  let jobId: string;

  beforeAll(async () => {
    jobId = await jobWithLog(LINES, 'success');
    expect(await h.db.logChunk.count({ where: { jobId } })).toBe(0);
  });

  test('?before= works at any line, the first and the last included', async () => {
    for (const before of [2, 1001, 33_333, 99_999, 100_001]) {
      const html = await (await fetch(`${page.url}/jobs/${jobId}?before=${before}`)).text();
      expect(html).toContain(`id="L${before - 1}"`);
      expect(html).toContain(lineText(before - 1));
      expect(html).toContain(`id="L${Math.max(1, before - 1000)}"`);
      expect(html).not.toContain(`id="L${before}"`);
      if (before > 1001) expect(html).not.toContain(`id="L${before - 1001}"`);
    }
  });

  test('the page shows the tail with a way to earlier lines, in bounded HTML', async () => {
    const res = await fetch(`${page.url}/jobs/${jobId}`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html.length).toBeLessThan(512 * 1024);
    expect(html).toContain(`id="L${LINES}"`);
    expect(html).toContain(lineText(LINES));
    expect(html).not.toContain(`id="L${LINES - 1000}"`);
    expect(html).toContain(`${LINES - 1000} earlier lines not shown`);
    expect(html).toContain(`href="/jobs/${jobId}?before=${LINES - 999}"`);
    expect(html).toContain(`href="/jobs/${jobId}/log.txt"`);
    // A finished job's page does not follow.
    expect(html).not.toContain('<script>');
  });

  test('?before= shows the window before a line', async () => {
    const html = await (await fetch(`${page.url}/jobs/${jobId}?before=50001`)).text();
    expect(html.length).toBeLessThan(512 * 1024);
    expect(html).toContain('id="L50000"');
    expect(html).toContain('id="L49001"');
    expect(html).not.toContain('id="L49000"');
    expect(html).not.toContain('id="L50001"');
  });

  test('log.txt streams every line', async () => {
    const res = await fetch(`${page.url}/jobs/${jobId}/log.txt`);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    const text = await res.text();
    let expected = 0;
    for (let i = 1; i <= LINES; i++) expected += lineText(i).length + 1;
    expect(text.length).toBe(expected);
    expect(text.startsWith(`${lineText(1)}\n${lineText(2)}\n`)).toBe(true);
    expect(text.endsWith(`${lineText(LINES)}\n`)).toBe(true);
  });
});

test('an expired log and expired artifacts say so on the page, and log.txt is 410, never a 500', async () => {
  const jobId = await jobWithLog(10, 'success');
  await h.jobs.logs.expire(jobId);
  await h.db.job.update({ where: { id: jobId }, data: { artifactsExpiredAt: new Date() } });
  const res = await fetch(`${page.url}/jobs/${jobId}`);
  expect(res.status).toBe(200);
  const html = await res.text();
  expect(html).toMatch(
    /id="log-expired">log expired on <time datetime="\d{4}-\d\d-\d\dT[^"]+">\d{4}-\d\d-\d\d \d\d:\d\d UTC<\/time>/,
  );
  expect(html).toContain('id="artifacts-expired">artifacts expired on');
  expect(html).not.toContain('id="L1"');
  const raw = await fetch(`${page.url}/jobs/${jobId}/log.txt`);
  expect(raw.status).toBe(410);
  expect(await raw.text()).toMatch(/expired on/);
  const events = await fetch(`${page.url}/jobs/${jobId}/events`);
  expect(events.status).toBe(200);
  await events.text();
});

test('log text and names are escaped, never markup', async () => {
  const jobId = await jobWithLog(0, 'running');
  await h.jobs.appendLogLines(jobId, [
    { seq: 1, stream: 'stdout', text: '<script>alert(1)</script> & "quotes"', time: new Date() },
    { seq: 2, stream: 'system', text: 'step 1/1 "<b>x</b>" started', time: new Date() },
  ]);
  const html = await (await fetch(`${page.url}/jobs/${jobId}`)).text();
  expect(html).not.toContain('<script>alert(1)');
  expect(html).not.toContain('<b>x</b>');
  expect(html).toContain('&#60;script&#62;alert(1)&#60;/script&#62; &#38; &#34;quotes&#34;');
  expect(html).toMatch(/class="ln s-system step" id="L2" data-step="1"/);
});

test('the event stream sends the lines after a point, then the end', async () => {
  const jobId = await jobWithLog(5, 'success');
  const text = await (await fetch(`${page.url}/jobs/${jobId}/events?after=3`)).text();
  const events = text.trim().split('\n\n');
  expect(events[0]).toBe(
    `id: 5\nevent: lines\ndata: ${JSON.stringify([4, 5].map((seq) => ({ seq, stream: 'stdout', text: lineText(seq) })))}`,
  );
  expect(events[1]).toBe('event: end\ndata: {"state":"success","exitCode":0}');
});

test('unknown jobs and artifacts are 404, bad ids 400', async () => {
  expect((await fetch(`${page.url}/jobs/${randomUUID()}`)).status).toBe(404);
  expect((await fetch(`${page.url}/jobs/not-a-job`)).status).toBe(400);
  const jobId = await jobWithLog(1, 'success');
  expect((await fetch(`${page.url}/jobs/${jobId}/artifacts/nope.txt`)).status).toBe(404);
  expect((await fetch(`${page.url}/jobs/${jobId}/artifacts/..%2f..%2flog.txt`)).status).toBe(404);
});

describe('in a browser', () => {
  let browser: Browser;

  beforeAll(async () => {
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
  });

  test('a failed job: named, linked to its pipeline, steps folded with the failed one open and in view', async () => {
    const repo = makeRepo({
      '.solstice/workflow.kdl': `
        job "build" {
          step "prepare" run="seq 1 120; echo prepared"
          step "breaks" run="echo about to break; exit 3"
        }
      `,
    });
    const { pipelineId, workflowId } = await h.startPipeline(repo.dir, repo.sha);
    expect((await h.pipelineResult(workflowId, pipelineId)).state).toBe('failure');
    const [build] = await h.pipelines.listJobs(pipelineId);
    const context = await browser.newContext();
    try {
      const tab = await context.newPage();
      await tab.goto(`${page.url}/jobs/${build.jobId}`);
      expect(await tab.locator('#job-name').textContent()).toBe('build');
      expect(await tab.locator('#pipeline').textContent()).toBe(`${path.basename(repo.dir)}#1`);
      // The step that passed is folded, the failed one open: its lines show, the other's do not.
      const prepare = tab.locator('#log details.fold[data-step="1"]');
      const breaks = tab.locator('#log details.fold.failed[data-step="2"]');
      expect(await prepare.getAttribute('open')).toBeNull();
      expect(await breaks.getAttribute('open')).toBe('');
      expect(await tab.locator('#log .t', { hasText: 'prepared' }).isVisible()).toBe(false);
      const failedLine = tab.locator('#log .ln', { hasText: 'about to break' });
      expect(await failedLine.isVisible()).toBe(true);
      // The page opens at the failed step: its line and line number are inside the viewport.
      const view = tab.viewportSize()!;
      for (const box of [await failedLine.boundingBox(), await failedLine.locator('.n').boundingBox()]) {
        expect(box).not.toBeNull();
        expect(box!.x).toBeGreaterThanOrEqual(0);
        expect(box!.x + box!.width).toBeLessThanOrEqual(view.width);
        expect(box!.y).toBeGreaterThanOrEqual(0);
        expect(box!.y + box!.height).toBeLessThanOrEqual(view.height);
      }
      // Unfolding the passed step shows its lines.
      await prepare.locator('summary').click();
      expect(await tab.locator('#log .t', { hasText: 'prepared' }).isVisible()).toBe(true);
      // The pipeline link leads to the pipeline's jobs, each linked back.
      await tab.locator('#pipeline').click();
      await tab.locator('#jobs a', { hasText: 'build' }).waitFor();
      expect(await tab.locator('#state').textContent()).toBe('failure');
      expect(await tab.locator('#jobs a', { hasText: 'build' }).getAttribute('href')).toBe(
        `/jobs/${build.jobId}`,
      );
    } finally {
      await context.close();
    }
  });

  test('a running job: lines and steps appear as it runs; then its artifact downloads byte for byte', async () => {
    const artifact = randomBytes(200_000);
    const fixture = path.join(tmp, 'report.bin');
    fs.writeFileSync(fixture, artifact);
    const [gate1, gate2] = [gatePath(), gatePath()];
    const repo = makeRepo({ 'README.md': 'page test\n' });
    const { jobId, workflowId } = await h.startJobWith(
      repo,
      {
        env: { FIXTURE: fixture },
        steps: [
          {
            name: 'slow',
            run: [
              // More lines than a window holds, so following the tail means scrolling.
              'seq 1 150',
              'echo "first line"',
              `while [ ! -e ${gate1} ]; do sleep 0.1; done`,
              'echo "after gate one"',
            ].join('\n'),
            continueOnError: false,
          },
          {
            name: 'package',
            run: [
              `while [ ! -e ${gate2} ]; do sleep 0.1; done`,
              'mkdir -p out && cp "$FIXTURE" out/report.bin',
            ].join('\n'),
            continueOnError: false,
          },
        ],
        artifacts: ['out/report.bin'],
      },
      'test-page',
    );
    await waitFor(
      async () => (await h.jobs.logLinesAfter(jobId, 0, 1000)).some((l) => l.text === 'first line'),
      60_000,
      'the job to print its first line',
    );

    const context = await browser.newContext({ acceptDownloads: true });
    try {
      const tab = await context.newPage();
      await tab.goto(`${page.url}/jobs/${jobId}`);
      expect(await tab.locator('#state').textContent()).toBe('running');
      await tab.locator('#log .t', { hasText: 'first line' }).waitFor();
      expect(await tab.locator('#log .t', { hasText: 'after gate one' }).count()).toBe(0);
      // Line numbers are inside the viewport (an inherited text-indent once put them off-screen).
      const inViewport = async (selector: string) => {
        const box = await tab.locator(selector).last().boundingBox();
        const view = tab.viewportSize();
        return (
          box !== null &&
          view !== null &&
          box.x >= 0 &&
          box.x + box.width <= view.width &&
          box.y >= 0 &&
          box.y + box.height <= view.height
        );
      };
      expect(await inViewport('#log .ln .n')).toBe(true);
      // The step table shows the step that runs, before the job ends.
      await tab.locator('#steps tr.step-running', { hasText: 'slow' }).waitFor({ timeout: 30_000 });

      fs.writeFileSync(gate1, '');
      await tab.locator('#log .t', { hasText: 'after gate one' }).waitFor({ timeout: 60_000 });
      // The page follows the tail: the new line is on screen without scrolling by hand.
      await waitFor(() => inViewport('#log .t >> text=after gate one'), 10_000, 'the new line in view');
      // The job still waits on the second gate: the line reached the open page live.
      expect((await h.jobs.getJob(jobId))?.state).toBe('running');
      await expect(tab.locator('#log .step').first().textContent()).resolves.toContain(
        'step 1/2 "slow" started',
      );
      // Live, without a reload: the first step ended, the second runs.
      await tab.locator('#steps tr.step-success', { hasText: 'slow' }).waitFor({ timeout: 30_000 });
      await tab.locator('#steps tr.step-running', { hasText: 'package' }).waitFor({ timeout: 30_000 });
      expect((await h.jobs.getJob(jobId))?.state).toBe('running');
      expect(await tab.locator('#steps tr.step-success td').nth(3).textContent()).toBe('0');

      fs.writeFileSync(gate2, '');
      expect((await h.result(workflowId, jobId)).state).toBe('success');
      // At the end the page reloads itself with the final state, the steps and the artifacts.
      await tab.locator('#state', { hasText: 'success' }).waitFor({ timeout: 60_000 });
      expect(await tab.locator('#steps td', { hasText: 'slow' }).count()).toBe(1);
      const [download] = await Promise.all([
        tab.waitForEvent('download'),
        tab.locator('#artifacts a', { hasText: 'out/report.bin' }).click(),
      ]);
      expect(download.suggestedFilename()).toBe('report.bin');
      const saved = path.join(tmp, 'downloaded.bin');
      await download.saveAs(saved);
      expect(fs.readFileSync(saved).equals(artifact)).toBe(true);
    } finally {
      await context.close();
    }
  });
});
