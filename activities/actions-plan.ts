/**
 * The planner of a commit's Actions workflows (`.forgejo/workflows`, `.gitea/workflows`,
 * `.github/workflows`), used when it has no `.solstice` file: every workflow whose `on:`
 * matches the trigger contributes its jobs. One of the planners of plan-definitions.ts.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { PipelinePlan } from '../model/domain';
import { redactUrlsInText } from '../model/redact-url';
import { loadConfig } from '../platform/config';
import { formatDiagnostics } from '../workflow-file';
import { planActions, type ActionsTrigger } from '../workflow-file/actions';
import type { PlanTrigger } from './plan-trigger';

/** The Actions workflows of a commit → its pipeline; errors of workflows that would run fail it. */
export async function planFromActionsWorkflows(
  files: Readonly<Record<string, string>>,
  trigger: PlanTrigger,
): Promise<PipelinePlan> {
  const paths = Object.keys(files).sort();
  const actionsTrigger: ActionsTrigger = {
    event: trigger.event,
    ref: trigger.ref,
    sha: trigger.sha,
    ...(trigger.repoUrl ? { repoUrl: redactUrlsInText(trigger.repoUrl) } : {}),
    ...(trigger.dispatch ? { dispatch: trigger.dispatch } : {}),
    ...(trigger.changedFiles ? { changedFiles: trigger.changedFiles } : {}),
  };
  const dispatch = trigger.dispatch;
  if (dispatch && !paths.includes(dispatch.workflow))
    throw ApplicationFailure.nonRetryable(
      `there is no workflow ${dispatch.workflow} at commit ${trigger.sha.slice(0, 12)}; it has ${paths.join(', ')}`,
      'InvalidWorkflowFile',
    );
  const plan = await planActions(
    paths.map((path) => ({ path, text: files[path] })),
    actionsTrigger,
    { runsOn: trigger.actionsRunsOn ?? loadConfig({}).actionsRunsOn },
  );
  if (plan.errors.length > 0) {
    throw ApplicationFailure.nonRetryable(
      plan.errors
        .map((e) => `${e.path} is not valid:\n${formatDiagnostics(e.path, e.diagnostics).trimEnd()}`)
        .join('\n'),
      'InvalidWorkflowFile',
    );
  }
  return {
    definition: plan.workflows.length > 0 ? plan.workflows.join(', ') : paths.join(', '),
    cancelSuperseded: plan.cancelSuperseded,
    jobs: plan.jobs,
  };
}
