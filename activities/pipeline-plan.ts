/**
 * Reads what a pipeline runs at its commit: `.solstice/workflow.kdl` (parsed, validated, matrix
 * jobs expanded, `when` applied to the trigger), or `.solstice/job.sh` as a one-job pipeline.
 * The repository is fetched into a temporary folder with the system git, so this works for
 * remote repositories as for local paths, and never touches a worker's own files.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ApplicationFailure } from '@temporalio/common';
import { expandJob, formatDiagnostics, parseWorkflowFile, whenMatches } from '../workflow-file';
import type { PipelineEvent, PipelinePlan, PlannedJob } from '../model/domain';
import { branchOf } from '../model/domain';
import {
  ACTIONS_WORKFLOW_DIRS,
  JOB_DEFINITION_PATHS,
  JOB_SCRIPT_PATH,
  WORKFLOW_FILE_PATH,
} from '../model/job-definition-paths';
import { pickWorkflowFiles, planActions, type ActionsTrigger } from '../workflow-file/actions';
import { loadConfig } from '../platform/config';
import { SolsticeError } from '../platform/errors';
import { redactErrorUrls, redactUrlsInText } from '../model/redact-url';

const run = promisify(execFile);

/**
 * Git could not read the fetched commit (it is not there, or git itself failed). Not the user's
 * error, unlike a commit without a job definition: a plain Error, so the activity is retried.
 */
export class CommitUnreadableError extends SolsticeError {}

async function git(cwd: string, args: string[]): Promise<string> {
  const { stdout } = await run('git', args, {
    cwd,
    maxBuffer: 16 * 1024 * 1024,
    env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
  });
  return stdout;
}

function firstLine(err: unknown): string {
  const e = err as { stderr?: string; message?: string };
  return (e.stderr?.trim() || e.message || String(err)).split('\n')[0];
}

/**
 * Which job definition files the commit has. `ls-tree` lists only the paths that exist, so a
 * missing file is no error here, while a missing commit or a broken git is one.
 */
async function definitionsAt(dir: string, sha: string): Promise<Set<string>> {
  let listed: string;
  try {
    listed = await git(dir, ['ls-tree', '--name-only', `${sha}^{commit}`, '--', ...JOB_DEFINITION_PATHS]);
  } catch (err) {
    // The message is what the pipeline shows: say what to check, not only what git said.
    throw new CommitUnreadableError(
      `cannot read commit ${sha.slice(0, 12)} in the fetched repository (${firstLine(err)}); ` +
        'check that the commit is still in the repository (a force-push may have removed it)',
      undefined,
      { cause: err },
    );
  }
  return new Set(listed.split('\n').filter((l) => l !== ''));
}

/** A file the commit has (definitionsAt listed it): any failure to read it is git's, not the user's. */
async function show(dir: string, sha: string, file: string): Promise<string> {
  try {
    return await git(dir, ['show', `${sha}:${file}`]);
  } catch (err) {
    throw new CommitUnreadableError(
      `git listed ${file} at commit ${sha.slice(0, 12)} but cannot read it: ${firstLine(err)}`,
      undefined,
      { cause: err },
    );
  }
}

export interface PlanRequest {
  repoUrl: string;
  commitSha: string;
  ref?: string;
  event: PipelineEvent;
  /** runs-on of a job.sh pipeline's one job. */
  label: string;
  /** `solstice enqueue --workflow F --input k=v`: run Actions workflow F as workflow_dispatch. */
  dispatch?: { workflow: string; inputs: Record<string, string> };
}

export interface PlanOptions {
  /** SOLSTICE_ACTIONS_RUNS_ON; absent: its default. */
  actionsRunsOn?: Record<string, string[]>;
}

export async function loadPipelinePlan(req: PlanRequest, opts: PlanOptions = {}): Promise<PipelinePlan> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'solstice-plan-'));
  try {
    await git(dir, ['init', '-q']);
    try {
      await git(dir, ['fetch', '-q', '--depth=1', '--no-tags', '--', req.repoUrl, req.commitSha]);
    } catch {
      // Some servers refuse fetching an unadvertised commit by id: fetch everything instead.
      try {
        await git(dir, ['fetch', '-q', '--no-tags', '--', req.repoUrl, '+refs/*:refs/remotes/src/*']);
      } catch (err) {
        // git's message quotes the URL, which may carry a token: it would reach the UI and the DB.
        // (git's stderr, which firstLine prefers, carries it too.)
        const why = redactUrlsInText(firstLine(redactErrorUrls(err as Error)));
        throw new Error(`cannot fetch ${redactUrlsInText(req.repoUrl)}: ${why}`, { cause: err });
      }
    }
    const found = await definitionsAt(dir, req.commitSha);
    if (found.has(WORKFLOW_FILE_PATH))
      return planFromWorkflowFile(await show(dir, req.commitSha, WORKFLOW_FILE_PATH), req);
    if (found.has(JOB_SCRIPT_PATH)) {
      return {
        definition: JOB_SCRIPT_PATH,
        cancelSuperseded: true,
        jobs: [{ name: 'job', needs: [], runsOn: req.label, env: {} }],
      };
    }
    // Without a Solstice file: the Actions workflows people already have (docs/actions.md).
    const listed = await git(dir, [
      'ls-tree',
      '--name-only',
      `${req.commitSha}^{commit}`,
      '--',
      ...ACTIONS_WORKFLOW_DIRS.map((d) => `${d}/`),
    ]);
    const actionsFiles = pickWorkflowFiles(listed.split('\n').filter((l) => l !== ''));
    if (actionsFiles.length > 0) {
      const files = [];
      for (const f of actionsFiles) files.push({ path: f, text: await show(dir, req.commitSha, f) });
      return await planFromActionsWorkflows(files, req, opts);
    }
    throw ApplicationFailure.nonRetryable(
      `commit ${req.commitSha.slice(0, 12)} has neither ${WORKFLOW_FILE_PATH} nor ${JOB_SCRIPT_PATH} nor workflows in ${ACTIONS_WORKFLOW_DIRS.join(', ')}`,
      'NoJobDefinition',
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The Actions workflows of a commit → its pipeline; errors of workflows that would run fail it. */
export async function planFromActionsWorkflows(
  files: { path: string; text: string }[],
  req: Pick<PlanRequest, 'ref' | 'event' | 'commitSha' | 'repoUrl' | 'dispatch'>,
  opts: PlanOptions = {},
): Promise<PipelinePlan> {
  const trigger: ActionsTrigger = {
    event: req.event,
    ref: req.ref,
    sha: req.commitSha,
    repoUrl: redactUrlsInText(req.repoUrl),
    ...(req.dispatch ? { dispatch: req.dispatch } : {}),
  };
  if (req.dispatch && !files.some((f) => f.path === req.dispatch?.workflow))
    throw ApplicationFailure.nonRetryable(
      `there is no workflow ${req.dispatch.workflow} at commit ${req.commitSha.slice(0, 12)}; it has ${files.map((f) => f.path).join(', ')}`,
      'InvalidWorkflowFile',
    );
  const plan = await planActions(files, trigger, {
    runsOn: opts.actionsRunsOn ?? loadConfig({}).actionsRunsOn,
  });
  if (plan.errors.length > 0) {
    throw ApplicationFailure.nonRetryable(
      plan.errors
        .map((e) => `${e.path} is not valid:\n${formatDiagnostics(e.path, e.diagnostics).trimEnd()}`)
        .join('\n'),
      'InvalidWorkflowFile',
    );
  }
  return {
    definition: plan.workflows.length > 0 ? plan.workflows.join(', ') : files.map((f) => f.path).join(', '),
    cancelSuperseded: plan.cancelSuperseded,
    jobs: plan.jobs,
  };
}

export function planFromWorkflowFile(text: string, req: Pick<PlanRequest, 'ref' | 'event'>): PipelinePlan {
  const parsed = parseWorkflowFile(text, { knownLabels: [] });
  if (!parsed.ok || !parsed.workflow) {
    const errors = parsed.diagnostics.filter((d) => d.severity === 'error');
    throw ApplicationFailure.nonRetryable(
      `${WORKFLOW_FILE_PATH} is not valid:\n${formatDiagnostics(WORKFLOW_FILE_PATH, errors).trimEnd()}`,
      'InvalidWorkflowFile',
    );
  }
  const wf = parsed.workflow;
  const instancesOf = new Map(wf.jobs.map((j) => [j.id, expandJob(j)]));
  const trigger = { event: req.event, branch: branchOf(req.ref) };
  const jobs: PlannedJob[] = [];
  for (const job of wf.jobs) {
    const matches = whenMatches(job.when, trigger);
    for (const inst of instancesOf.get(job.id) ?? []) {
      jobs.push({
        name: inst.id,
        needs: job.needs.flatMap((n) => (instancesOf.get(n) ?? []).map((i) => i.id)),
        runsOn: inst.runsOn,
        steps: job.steps,
        env: inst.env,
        ...(job.secrets?.length ? { secrets: job.secrets } : {}),
        ...(job.timeoutMs ? { timeoutMs: job.timeoutMs } : {}),
        ...(job.artifacts.length > 0 ? { artifacts: job.artifacts } : {}),
        ...(matches ? {} : { skipReason: `its when does not match this ${req.event}` }),
      });
    }
  }
  return { definition: WORKFLOW_FILE_PATH, cancelSuperseded: wf.cancelSuperseded ?? true, jobs };
}
