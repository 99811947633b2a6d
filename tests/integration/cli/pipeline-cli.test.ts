/** Pipelines through the CLI as a user runs it (real processes): enqueue, status, rerun, cancel. */
import fs from 'node:fs';
import { pipelineIdsForRequest } from '../../../ingress/pipeline-start';
import { newJobRequest } from '../../../model/job-request';
import { cliEnv, runCli, type CliResult } from '../../support/cli';
import { makeRepo } from '../../support/git-repo';
import type { Harness } from '../../support/harness';
import { harnessWithWorkerOn, temporalBackends } from '../../support/temporal-backends';
import { gatePath, waitFor } from '../../support/wait';

let h: Harness;

function solstice(args: string[]): Promise<CliResult> {
  return runCli(args, cliEnv(h.cfg));
}

// The same commands against the dev server and a Temporal cluster on PostgreSQL (SOLSTICE_TEST_TEMPORAL).
describe.each(temporalBackends())('on the %s Temporal', (backend) => {
  harnessWithWorkerOn(backend, (harness) => (h = harness));

  test('enqueue --follow runs the workflow file as a pipeline; status shows pipeline, jobs, steps; rerun --failed', async () => {
    const fixed = gatePath();
    const repo = makeRepo({
      '.solstice/workflow.kdl': `
      job "a" { step "hello" run="echo hello from a" }
      job "b" {
        needs "a"
        step "check" run="test -e ${fixed}"
      }
      job "c" {
        needs "b"
        step "after" run="echo after b"
      }
    `,
    });
    const r = await solstice(['enqueue', '--direct', '--repo', repo.dir, '--follow']);
    expect(r.code).toBe(1);
    const pipelineId = /^pipeline ([0-9a-f-]{36})$/m.exec(r.stdout)?.[1] as string;
    expect(pipelineId).toBeDefined();
    // Each line of a job is prefixed with its name; a table of outcomes ends the output.
    expect(r.stdout).toMatch(/^a \| job [0-9a-f-]{36}$/m);
    expect(r.stdout).toContain('a | hello from a\n');
    expect(r.stdout).toMatch(/^b \| failure \(exit code 1\)/m);
    expect(r.stdout).toContain('c | skipped: needs b, which ended failure\n');
    expect(r.stdout).toMatch(
      /^JOB +STATE +EXIT +DURATION +ID\na +success +0 +\S+ +[0-9a-f-]{36}\nb +failure +1 .*\nc +skipped +- +- +-$/m,
    );
    expect(r.stdout).toContain(`pipeline ${pipelineId} failure: failed: b\n`);

    const status = await solstice(['status', pipelineId.slice(0, 8)]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^state +failure$/m);
    expect(status.stdout).toMatch(/^ {2}a {2}success {2}[0-9a-f-]{36}$/m);
    expect(status.stdout).toMatch(/^ {7}1\. hello {2}success exit 0 \d+(\.\d)?m?s$/m);
    expect(status.stdout).toMatch(/^ {2}b {2}failure {2}[0-9a-f-]{36} {2}needs a$/m);
    expect(status.stdout).toMatch(/^ {2}c {2}skipped {2}needs b\n {4}needs b, which ended failure$/m);
    const json = JSON.parse((await solstice(['status', pipelineId, '--json'])).stdout) as {
      jobs: { name: string; steps: { name: string }[] }[];
    };
    expect(json.jobs.map((j) => [j.name, j.steps.map((s) => s.name)])).toEqual([
      ['a', ['hello']],
      ['b', ['check']],
      ['c', []],
    ]);

    fs.writeFileSync(fixed, '');
    const again = await solstice(['rerun', pipelineId.slice(0, 8), '--failed', '--follow']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('not run again (succeeded before): a\n');
    expect(again.stdout).not.toContain('hello from a');
    expect(again.stdout).toContain('c | after b\n');
    expect(again.stdout).toMatch(/^pipeline [0-9a-f-]{36} success$/m);
    // Two pipelines of three jobs each: at load 25 this took just over jest's default 120 s.
  }, 300_000);

  test('solstice cancel <pipeline> --wait stops its jobs and leaves no process or workspace', async () => {
    const repo = makeRepo({
      '.solstice/workflow.kdl': 'job "slow" { step "s" run="echo sleeping; sleep 120" }\n',
    });
    const r = await solstice(['enqueue', '--direct', '--repo', repo.dir]);
    expect(r.code).toBe(0);
    const pipelineId = /^pipeline ([0-9a-f-]{36})$/m.exec(r.stdout)?.[1] as string;
    // A direct start gets the ids the bridge would give the same request.
    const workflowId = /^workflow (\S+)$/m.exec(r.stdout)?.[1] as string;
    const deliveryId = /\/manual-(enqueue-[0-9a-f-]{36})$/.exec(workflowId)?.[1];
    expect(deliveryId).toBeDefined();
    const request = newJobRequest({
      source: 'manual',
      repoUrl: repo.dir,
      commitSha: repo.sha,
      ref: repo.sha,
      deliveryId,
    });
    expect(pipelineIdsForRequest(request)).toEqual({ workflowId, pipelineId });
    await waitFor(async () => {
      const [job] = await h.pipelines.listJobs(pipelineId);
      if (!job?.jobId) return false;
      return (await h.jobs.logLinesAfter(job.jobId, 0, 100)).some((l) => l.text === 'sleeping');
    });
    const c = await solstice(['cancel', pipelineId, '--wait']);
    expect(c.stdout).toContain(`cancel requested: pipeline ${pipelineId}`);
    expect(c.code).toBe(4);
    expect(await h.leftovers()).toEqual({ processes: [], workspaces: [] });
    const [job] = await h.pipelines.listJobs(pipelineId);
    expect(job.state).toBe('cancelled');
  });
});
