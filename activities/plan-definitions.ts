/**
 * A commit's definition files (path → text) and its trigger → the PipelinePlan. One planner
 * per kind of file, tried in the order of PLANNERS; the first whose file the commit has
 * plans the pipeline. Pure and synchronous: it runs in a worker thread (plan-thread.ts), so
 * a file crafted to be slow costs that thread, never the worker's event loop. A planner for
 * another kind of file (GitHub/Forgejo Actions YAML) is one more entry in PLANNERS.
 */
import { ApplicationFailure } from '@temporalio/common';
import { planFromWorkflowFile } from './pipeline-plan';
import type { PipelineEvent, PipelinePlan } from '../model/domain';
import { JOB_SCRIPT_PATH, WORKFLOW_FILE_PATH } from '../model/job-definition-paths';

export interface PlanTrigger {
  ref?: string;
  event: PipelineEvent;
  /** runs-on of a job.sh pipeline's one job. */
  label: string;
}

export interface DefinitionPlanner {
  /** The file in the commit this planner reads. */
  path: string;
  plan(text: string, trigger: PlanTrigger): PipelinePlan;
}

export const PLANNERS: readonly DefinitionPlanner[] = [
  { path: WORKFLOW_FILE_PATH, plan: planFromWorkflowFile },
  {
    path: JOB_SCRIPT_PATH,
    plan: (_text, trigger) => ({
      definition: JOB_SCRIPT_PATH,
      cancelSuperseded: true,
      jobs: [{ name: 'job', needs: [], runsOn: trigger.label, env: {} }],
    }),
  },
];

/** The paths planning reads from a commit, in the order they are looked for. */
export const DEFINITION_PATHS: readonly string[] = PLANNERS.map((p) => p.path);

/**
 * A plan travels as one Temporal payload (limit 4 MB, shared with the rest of the activity's
 * result): keep it well under, so an activity can always complete.
 */
export const MAX_PLAN_BYTES = 1024 * 1024;

export function planDefinitions(
  files: Readonly<Record<string, string>>,
  trigger: PlanTrigger,
): PipelinePlan | undefined {
  const planner = PLANNERS.find((p) => files[p.path] !== undefined);
  if (!planner) return undefined;
  const plan = planner.plan(files[planner.path], trigger);
  const bytes = Buffer.byteLength(JSON.stringify(plan), 'utf8');
  if (bytes > MAX_PLAN_BYTES) {
    throw ApplicationFailure.nonRetryable(
      `${planner.path}:1:1: error: the plan is ${bytes} bytes, more than the ${MAX_PLAN_BYTES} allowed ` +
        `(${plan.jobs.length} jobs); make fewer jobs or steps, or move long scripts into files in the repository`,
      'InvalidWorkflowFile',
    );
  }
  return plan;
}
