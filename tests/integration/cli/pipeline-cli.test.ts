/**
 * Pipelines through the CLI as a user runs it (real processes): enqueue, status, logs,
 * artifacts, rerun, cancel. On the dev server each test runs in both modes, directly and through
 * the API; on a Temporal cluster on PostgreSQL (SOLSTICE_TEST_TEMPORAL) directly, since what
 * differs there is Temporal, which the API reaches the same way.
 */
import fs from 'node:fs';
import { pipelineIdsForRequest } from '../../../ingress/pipeline-start';
import { newJobRequest } from '../../../model/job-request';
import { runCli, type CliResult } from '../../support/cli';
import { CLI_MODES, cliModesForFile, type CliMode } from '../../support/cli-modes';
import { makeRepo } from '../../support/git-repo';
import type { Harness } from '../../support/harness';
import { harnessWithWorkerOn, temporalBackends } from '../../support/temporal-backends';
import { gatePath, waitFor } from '../../support/wait';

let h: Harness;

describe.each(temporalBackends())('on the %s Temporal', (backend) => {
  harnessWithWorkerOn(backend, (harness) => (h = harness));
  const modes = cliModesForFile(() => h);
  const cliModes: readonly CliMode[] = backend === 'dev' ? CLI_MODES : ['direct'];

  describe.each(cliModes)('%s mode', (mode: CliMode) => {
    function solstice(args: string[]): Promise<CliResult> {
      return runCli(args, modes.env(mode));
    }

    test('enqueue --follow runs the workflow file as a pipeline; status shows pipeline, jobs, steps; rerun --failed', async () => {
      const fixed = gatePath();
      const repo = makeRepo({
        '.solstice/workflow.kdl': `
      job "a" {
        step "hello" run="echo hello from a"
        artifacts "out.txt"
        step "write" run="echo built by a > out.txt"
      }
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

      const status = await solstice(['status', modes.ref(mode, pipelineId)]);
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
        ['a', ['hello', 'write']],
        ['b', ['check']],
        ['c', []],
      ]);

      const logs = await solstice(['logs', `${pipelineId}/a`]);
      expect(logs.stdout).toContain('hello from a\n');
      const list = await solstice(['artifacts', 'list', `${pipelineId}/a`]);
      expect(list.stdout).toMatch(/^out\.txt +11 B +[0-9a-f]{64}$/m);
      const got = await solstice(['artifacts', 'get', `${pipelineId}/a`, 'out.txt']);
      expect([got.code, got.stdout]).toEqual([0, 'built by a\n']);

      fs.writeFileSync(fixed, '');
      const again = await solstice(['rerun', modes.ref(mode, pipelineId), '--failed', '--follow']);
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
      // The API starts its own request (its delivery id says so); the CLI's is checked directly.
      const deliveryId = /\/manual-((?:enqueue|api)-[0-9a-f-]{36})$/.exec(workflowId)?.[1];
      expect(deliveryId).toMatch(mode === 'direct' ? /^enqueue-/ : /^api-/);
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
});
