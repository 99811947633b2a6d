/**
 * The Temporal Web UI served by the dev server, in headless Chromium: a finished job is found
 * by a search attribute filter (the list page's `query` parameter, as the README documents),
 * and its page shows the run's summary.
 */
import type { Browser, Page } from 'playwright-core';
import { pipelineJobWorkflowId } from '../../../model/domain';
import { runSummary } from '../../../workflows/web-ui';
import { launchBrowser } from '../../support/browser';
import { jobRepo } from '../../support/git-repo';
import { startHarness, type Harness } from '../../support/harness';
import { waitFor } from '../../support/wait';

let h: Harness;
let browser: Browser | undefined;

beforeAll(async () => {
  h = await startHarness();
  await h.startWorker();
});

afterAll(async () => {
  await browser?.close();
  await h?.close();
});

/** Whether the page or one of its frames (the UI renders markdown in sandboxed frames) shows `text`. */
async function shows(page: Page, text: string): Promise<boolean> {
  for (const frame of page.frames()) {
    const body = await frame
      .locator('body')
      .innerText({ timeout: 1_000 })
      .catch(() => '');
    if (body.includes(text)) return true;
  }
  return false;
}

test('a job is found in the Web UI by its search attributes and its page shows the summary', async () => {
  const ui = process.env.SOLSTICE_TEST_TEMPORAL_UI;
  if (!ui) throw new Error('SOLSTICE_TEST_TEMPORAL_UI is unset: run through jest (global setup)');
  const repo = jobRepo('echo seen in the browser');
  const { pipelineId, workflowId } = await h.startPipeline(repo.dir, repo.sha);
  expect((await h.pipelineResult(workflowId, pipelineId)).state).toBe('success');
  const jobWorkflowId = pipelineJobWorkflowId(workflowId, 'job');
  const summary = runSummary({ repoUrl: repo.dir, commitSha: repo.sha, job: 'job' });

  browser = await launchBrowser();
  const page = await browser.newPage();
  // Only the job: the pipeline of the same commit must be filtered out by the query.
  const query = `SolsticeCommit = "${repo.sha}" AND SolsticeState = "success" AND WorkflowType = "JobWorkflow"`;
  const listUrl = `${ui}/namespaces/default/workflows?query=${encodeURIComponent(query)}`;
  const jobLink = page.getByRole('link', { name: jobWorkflowId, exact: true });
  // Visibility is eventually consistent: reload the list until the run is there.
  for (let i = 0; ; i++) {
    await page.goto(listUrl);
    try {
      await jobLink.waitFor({ timeout: 5_000 });
      break;
    } catch (err) {
      if (i >= 5) throw err;
    }
  }
  expect(await page.getByRole('link', { name: workflowId, exact: true }).count()).toBe(0);

  await jobLink.click();
  await page.waitForURL((u) => u.pathname.includes(encodeURIComponent(jobWorkflowId)));
  // The summary labels the run's start in its history...
  await page.getByText(summary, { exact: true }).first().waitFor({ timeout: 30_000 });
  // ...and the User Metadata tab has it with the details, current details and activity summaries.
  await page.getByRole('tab', { name: /User Metadata/ }).click();
  for (const text of [summary, `Commit ${repo.sha}`, 'all steps passed', 'boot VM local', 'store log']) {
    await waitFor(() => shows(page, text), 30_000, `"${text}" on the User Metadata tab`);
  }
});
