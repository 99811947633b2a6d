/**
 * PipelineWorkflow end to end on real Temporal (the dev server, then a cluster), real PostgreSQL, the real log
 * service and runner, and real processes (the local provider): the DAG of `needs`, skipping,
 * cancelling, superseding, rerunning, and the job.sh fallback.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { makeRepo } from '../../support/git-repo';
import type { Harness } from '../../support/harness';
import { harnessWithWorkerOn, temporalBackends } from '../../support/temporal-backends';
import { gatePath, waitFor } from '../../support/wait';
import { rerunPipeline } from '../../../ingress/pipeline-start';
import type { JobStepRecord } from '../../../storage/job-store';

let h: Harness;

/** A new commit on the repository's branch; returns its sha. */
function commitTo(dir: string, file: string): string {
  fs.writeFileSync(path.join(dir, file), 'more\n');
  const git = (...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.invalid', ...args], { cwd: dir })
      .toString()
      .trim();
  git('add', '-A');
  git('commit', '-q', '-m', 'more');
  return git('rev-parse', 'HEAD');
}

function workflowRepo(kdl: string, extra: Record<string, string> = {}) {
  return makeRepo({ '.solstice/workflow.kdl': kdl, ...extra });
}

async function jobsOf(pipelineId: string) {
  return Object.fromEntries((await h.pipelines.listJobs(pipelineId)).map((j) => [j.name, j]));
}

/** When the job's (single) step ran, from job_steps. */
async function span(jobId: string | null): Promise<{ start: number; end: number }> {
  const [step] = (await h.jobs.listSteps(jobId as string)) as [JobStepRecord];
  const start = (step.startedAt as Date).getTime();
  return { start, end: start + (step.durationMs as number) };
}

// The same tests on the dev server and on a Temporal cluster on PostgreSQL (SOLSTICE_TEST_TEMPORAL).
describe.each(temporalBackends())('on the %s Temporal', (backend) => {
  harnessWithWorkerOn(backend, (harness) => (h = harness));

  test('a diamond runs b and c in parallel after a, and d after both', async () => {
    const repo = workflowRepo(`
    job "a" { step "a" run="echo a" }
    job "b" {
      needs "a"
      step "b" run="sleep 3"
    }
    job "c" {
      needs "a"
      step "c" run="sleep 3"
    }
    job "d" {
      needs "b" "c"
      step "d" run="echo d"
    }
  `);
    const { pipelineId, workflowId } = await h.startPipeline(repo.dir, repo.sha);
    const p = await h.pipelineResult(workflowId, pipelineId);
    expect(p.state).toBe('success');
    const jobs = await jobsOf(pipelineId);
    expect(Object.values(jobs).map((j) => [j.name, j.state, j.needs])).toEqual([
      ['a', 'success', []],
      ['b', 'success', ['a']],
      ['c', 'success', ['a']],
      ['d', 'success', ['b', 'c']],
    ]);
    const [a, b, c, d] = await Promise.all(['a', 'b', 'c', 'd'].map((n) => span(jobs[n].jobId)));
    expect(b.start).toBeGreaterThanOrEqual(a.end);
    expect(c.start).toBeGreaterThanOrEqual(a.end);
    // b and c overlap: both were running at the same time.
    expect(b.start).toBeLessThan(c.end);
    expect(c.start).toBeLessThan(b.end);
    expect(d.start).toBeGreaterThanOrEqual(Math.max(b.end, c.end));
    // Each job is its own JobWorkflow, a child of the pipeline, with the documented id.
    const job = await h.jobs.getJob(jobs.d.jobId as string);
    expect(job?.workflowId).toBe(`${workflowId}/job/d`);
    const desc = await h.client.workflow.getHandle(`${workflowId}/job/d`).describe();
    expect(desc.type).toBe('JobWorkflow');
    expect(desc.raw.workflowExecutionInfo?.parentExecution?.workflowId).toBe(workflowId);
    expect(await h.leftovers()).toEqual({ processes: [], workspaces: [] });
  });

  test('a failing b skips d; c still runs; the pipeline fails', async () => {
    const repo = workflowRepo(`
    job "a" { step "a" run="true" }
    job "b" {
      needs "a"
      step "b" run="exit 3"
    }
    job "c" {
      needs "a"
      step "c" run="true"
    }
    job "d" {
      needs "b" "c"
      step "d" run="true"
    }
  `);
    const { pipelineId, workflowId } = await h.startPipeline(repo.dir, repo.sha);
    const p = await h.pipelineResult(workflowId, pipelineId);
    expect(p.state).toBe('failure');
    expect(p.message).toBe('failed: b');
    const jobs = await jobsOf(pipelineId);
    expect(Object.values(jobs).map((j) => [j.name, j.state])).toEqual([
      ['a', 'success'],
      ['b', 'failure'],
      ['c', 'success'],
      ['d', 'skipped'],
    ]);
    expect(jobs.d.jobId).toBeNull();
    expect(jobs.d.message).toBe('needs b, which ended failure');
    expect((await h.jobs.getJob(jobs.b.jobId as string))?.exitCode).toBe(3);
    expect((await h.client.workflow.getHandle(workflowId).describe()).status.name).toBe('FAILED');
  });

  test('cancelling a pipeline mid-run cancels its jobs and leaves no process or workspace', async () => {
    const repo = workflowRepo(`
    job "slow" { step "sleep" run="echo sleeping; sleep 120" }
    job "after" {
      needs "slow"
      step "x" run="true"
    }
  `);
    const { pipelineId, workflowId } = await h.startPipeline(repo.dir, repo.sha);
    await waitFor(
      async () => {
        const slow = (await jobsOf(pipelineId)).slow;
        if (!slow?.jobId) return false;
        const lines = await h.jobs.logLinesAfter(slow.jobId, 0, 1000);
        return lines.some((l) => l.text === 'sleeping');
      },
      60_000,
      'the slow job to run its step',
    );
    expect((await h.leftovers()).processes.length).toBeGreaterThan(0);
    await h.client.workflow.getHandle(workflowId).cancel();
    const p = await h.pipelineResult(workflowId, pipelineId);
    expect(p.state).toBe('cancelled');
    const jobs = await jobsOf(pipelineId);
    expect(jobs.slow.state).toBe('cancelled');
    expect(jobs.after.state).toBe('cancelled');
    expect((await h.jobs.getJob(jobs.slow.jobId as string))?.state).toBe('cancelled');
    expect(await h.leftovers()).toEqual({ processes: [], workspaces: [] });
    expect((await h.client.workflow.getHandle(workflowId).describe()).status.name).toBe('CANCELLED');
  });

  test('cancelling one job of a pipeline skips what needs it; the rest still runs', async () => {
    const repo = workflowRepo(`
    job "slow" { step "sleep" run="echo sleeping; sleep 120" }
    job "after" {
      needs "slow"
      step "x" run="true"
    }
    job "other" { step "y" run="true" }
  `);
    const { pipelineId, workflowId } = await h.startPipeline(repo.dir, repo.sha);
    await waitFor(async () => {
      const slow = (await jobsOf(pipelineId)).slow;
      if (!slow?.jobId) return false;
      return (await h.jobs.logLinesAfter(slow.jobId, 0, 1000)).some((l) => l.text === 'sleeping');
    });
    await h.client.workflow.getHandle(`${workflowId}/job/slow`).cancel();
    const p = await h.pipelineResult(workflowId, pipelineId);
    expect(p.state).toBe('cancelled');
    const jobs = await jobsOf(pipelineId);
    expect(Object.values(jobs).map((j) => [j.name, j.state])).toEqual([
      ['slow', 'cancelled'],
      ['after', 'skipped'],
      ['other', 'success'],
    ]);
    expect(await h.leftovers()).toEqual({ processes: [], workspaces: [] });
  });

  test('a new push to the same branch cancels the older pipeline; cancel-superseded #false opts out', async () => {
    const gate = gatePath();
    const kdl = (optOut: boolean) => `
    ${optOut ? 'cancel-superseded #false' : ''}
    job "wait" { step "wait" run="echo waiting; while [ ! -e ${gate} ]; do sleep 0.2; done" }
  `;
    const push = { source: 'forgejo' as const, event: 'push' as const, ref: 'refs/heads/main' };
    const waiting = (pipelineId: string) =>
      waitFor(
        async () => {
          const job = (await jobsOf(pipelineId)).wait;
          if (!job?.jobId) return false;
          return (await h.jobs.logLinesAfter(job.jobId, 0, 1000)).some((l) => l.text === 'waiting');
        },
        60_000,
        'the job to run',
      );

    const first = workflowRepo(kdl(false));
    const older = await h.startPipeline(first.dir, first.sha, push);
    await waiting(older.pipelineId);
    // A manual run of the branch is left alone by pushes.
    const manual = await h.startPipeline(first.dir, first.sha, { ref: push.ref });
    await waiting(manual.pipelineId);
    const second = commitTo(first.dir, 'second.txt');
    const newer = await h.startPipeline(first.dir, second, push);
    const cancelled = await h.pipelineResult(older.workflowId, older.pipelineId);
    expect(cancelled.state).toBe('cancelled');
    expect(cancelled.message).toBe(`superseded by pipeline ${newer.pipelineId}, a newer push to the branch`);
    expect((await jobsOf(older.pipelineId)).wait.state).toBe('cancelled');
    await waiting(newer.pipelineId);

    // The newer run opts out: the one it would supersede keeps running.
    const optOut = workflowRepo(kdl(true));
    const newest = await h.startPipeline(optOut.dir, optOut.sha, { ...push, repoUrl: optOut.dir });
    const keeps = await h.startPipeline(optOut.dir, optOut.sha, push);
    await waiting(keeps.pipelineId);
    await waiting(newest.pipelineId);
    expect((await h.pipelines.getPipeline(newest.pipelineId))?.state).toBe('running');

    fs.writeFileSync(gate, '');
    expect((await h.pipelineResult(newer.workflowId, newer.pipelineId)).state).toBe('success');
    expect((await h.pipelineResult(manual.workflowId, manual.pipelineId)).state).toBe('success');
    expect((await h.pipelineResult(newest.workflowId, newest.pipelineId)).state).toBe('success');
    expect((await h.pipelineResult(keeps.workflowId, keeps.pipelineId)).state).toBe('success');
    expect(await h.leftovers()).toEqual({ processes: [], workspaces: [] });
  });

  test('20 pushes to one branch in 5 s: every superseded pipeline ends cancelled in the database', async () => {
    // Pushes 250 ms apart land while older pipelines plan, between planning and their first job,
    // and while their jobs run: each of those moments must still reach a final state.
    const repo = workflowRepo(`job "build" { step "build" run="sleep 2; echo built" }`);
    const push = { source: 'forgejo' as const, event: 'push' as const, ref: 'refs/heads/busy' };
    const runs: { pipelineId: string; workflowId: string }[] = [];
    for (let i = 0; i < 20; i++) {
      const sha = i === 0 ? repo.sha : commitTo(repo.dir, `push-${i}.txt`);
      runs.push(await h.startPipeline(repo.dir, sha, push));
      await new Promise((r) => setTimeout(r, 250));
    }
    const ended = [];
    for (const r of runs) ended.push(await h.pipelineResult(r.workflowId, r.pipelineId));
    const last = ended.pop()!;
    expect(last.state).toBe('success');
    const superseded = ended.filter((p) => p.message?.startsWith('superseded by'));
    expect(superseded.length).toBeGreaterThan(10);
    expect(superseded.map((p) => p.state)).toEqual(superseded.map(() => 'cancelled'));
    for (const p of ended) {
      expect(['cancelled', 'success']).toContain(p.state);
      expect(p.finishedAt).not.toBeNull();
      for (const j of Object.values(await jobsOf(p.id))) expect(['cancelled', 'success']).toContain(j.state);
    }
    expect(await h.leftovers()).toEqual({ processes: [], workspaces: [] });
  }, 240_000);

  test('rerun --failed runs only the failed job and its dependents', async () => {
    const fixed = gatePath();
    const repo = workflowRepo(`
    job "a" { step "a" run="true" }
    job "b" {
      needs "a"
      step "b" run="test -e ${fixed}"
    }
    job "c" {
      needs "a"
      step "c" run="true"
    }
    job "d" {
      needs "b"
      step "d" run="true"
    }
  `);
    const first = await h.startPipeline(repo.dir, repo.sha);
    const before = await h.pipelineResult(first.workflowId, first.pipelineId);
    expect(before.state).toBe('failure');
    const old = await jobsOf(first.pipelineId);
    expect([old.b.state, old.d.state]).toEqual(['failure', 'skipped']);

    fs.writeFileSync(fixed, '');
    const rerun = await rerunPipeline(h.client, h.cfg, before, Object.values(old), { failedOnly: true });
    expect(rerun.reused.sort()).toEqual(['a', 'c']);
    const after = await h.pipelineResult(rerun.workflowId, rerun.pipelineId);
    expect(after.state).toBe('success');
    expect(after.rerunOf).toBe(first.pipelineId);
    const now = await jobsOf(rerun.pipelineId);
    expect(Object.values(now).map((j) => [j.name, j.state])).toEqual([
      ['a', 'success'],
      ['b', 'success'],
      ['c', 'success'],
      ['d', 'success'],
    ]);
    // a and c were not run again: the rerun points at their earlier runs.
    expect(now.a.jobId).toBe(old.a.jobId);
    expect(now.c.jobId).toBe(old.c.jobId);
    expect(now.b.jobId).not.toBe(old.b.jobId);
    expect(now.d.jobId).not.toBeNull();
    const rerunJobs = await h.db.job.count({ where: { workflowId: { startsWith: rerun.workflowId } } });
    expect(rerunJobs).toBe(2);
  });

  test('a repository with only .solstice/job.sh runs as a one-job pipeline', async () => {
    const repo = makeRepo({ '.solstice/job.sh': '#!/bin/sh\necho only job.sh\n' });
    const { pipelineId, workflowId } = await h.startPipeline(repo.dir, repo.sha);
    const p = await h.pipelineResult(workflowId, pipelineId);
    expect(p.state).toBe('success');
    const jobs = await h.pipelines.listJobs(pipelineId);
    expect(jobs.map((j) => [j.name, j.state])).toEqual([['job', 'success']]);
    const lines = await h.jobs.logLinesAfter(jobs[0].jobId as string, 0, 1000);
    expect(lines.map((l) => l.text)).toContain('only job.sh');
    expect(await h.jobs.listSteps(jobs[0].jobId as string)).toEqual([
      expect.objectContaining({ name: '.solstice/job.sh', outcome: 'success' }),
    ]);
  });

  test('an invalid workflow file fails the pipeline with the located error, running nothing', async () => {
    const repo = workflowRepo('job "a" { stepp "x" run="true" }\n');
    const { pipelineId, workflowId } = await h.startPipeline(repo.dir, repo.sha);
    const p = await h.pipelineResult(workflowId, pipelineId);
    expect(p.state).toBe('failure');
    expect(p.message).toMatch(/\.solstice\/workflow\.kdl:1:\d+: error: .*did you mean "step"/);
    expect(await h.pipelines.listJobs(pipelineId)).toEqual([]);
  });
});
