/**
 * A commit's definition files (path → text) and its trigger → the PipelinePlan. One planner
 * per kind of definition, tried in the order of PLANNERS; the first that finds its files in
 * the commit plans the pipeline. It runs in a worker thread (plan-thread.ts), so a file
 * crafted to be slow costs that thread, never the worker's event loop.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { PipelinePlan } from '../model/domain';
import { ACTIONS_WORKFLOW_DIRS, JOB_SCRIPT_PATH, WORKFLOW_FILE_PATH } from '../model/job-definition-paths';
import { pickWorkflowFiles } from '../workflow-file/actions';
import { planFromActionsWorkflows } from './actions-plan';
import { planFromWorkflowFile } from './pipeline-plan';
import type { PlanTrigger } from './plan-trigger';

export type { PlanTrigger } from './plan-trigger';

export interface DefinitionPlanner {
  /** What `git ls-tree` is asked for: files, or folders ending in `/`. */
  paths: readonly string[];
  /** The listed files this planner reads; none: it does not plan this commit. */
  pick(listed: readonly string[]): string[];
  plan(files: Readonly<Record<string, string>>, trigger: PlanTrigger): PipelinePlan | Promise<PipelinePlan>;
}

/** A planner of one file. */
function oneFile(
  path: string,
  plan: (text: string, trigger: PlanTrigger) => PipelinePlan,
): DefinitionPlanner {
  return {
    paths: [path],
    pick: (listed) => (listed.includes(path) ? [path] : []),
    plan: (files, trigger) => plan(files[path], trigger),
  };
}

export const PLANNERS: readonly DefinitionPlanner[] = [
  oneFile(WORKFLOW_FILE_PATH, planFromWorkflowFile),
  oneFile(JOB_SCRIPT_PATH, (_text, trigger) => ({
    definition: JOB_SCRIPT_PATH,
    cancelSuperseded: true,
    jobs: [{ name: 'job', needs: [], runsOn: trigger.label, env: {} }],
  })),
  // Without a Solstice file: the Actions workflows people already have (docs/actions.md).
  {
    paths: ACTIONS_WORKFLOW_DIRS.map((d) => `${d}/`),
    pick: pickWorkflowFiles,
    plan: planFromActionsWorkflows,
  },
];

/** The paths planning lists in a commit, in the order they are looked for. */
export const DEFINITION_PATHS: readonly string[] = PLANNERS.flatMap((p) => p.paths);

/** The planner for a commit whose definition paths are `listed`, and the files it reads. */
export function choosePlanner(
  listed: readonly string[],
): { planner: DefinitionPlanner; files: string[] } | undefined {
  for (const planner of PLANNERS) {
    const files = planner.pick(listed);
    if (files.length > 0) return { planner, files };
  }
  return undefined;
}

/**
 * A plan travels as one Temporal payload (limit 4 MB, shared with the rest of the activity's
 * result): keep it well under, so an activity can always complete.
 */
export const MAX_PLAN_BYTES = 1024 * 1024;

export async function planDefinitions(
  files: Readonly<Record<string, string>>,
  trigger: PlanTrigger,
): Promise<PipelinePlan | undefined> {
  const chosen = choosePlanner(Object.keys(files));
  if (!chosen) return undefined;
  const read = Object.fromEntries(chosen.files.map((f) => [f, files[f]]));
  const plan = await chosen.planner.plan(read, trigger);
  const bytes = Buffer.byteLength(JSON.stringify(plan), 'utf8');
  if (bytes > MAX_PLAN_BYTES) {
    throw ApplicationFailure.nonRetryable(
      `${chosen.files[0]}:1:1: error: the plan is ${bytes} bytes, more than the ${MAX_PLAN_BYTES} allowed ` +
        `(${plan.jobs.length} jobs); make fewer jobs or steps, or move long scripts into files in the repository`,
      'InvalidWorkflowFile',
    );
  }
  return plan;
}
