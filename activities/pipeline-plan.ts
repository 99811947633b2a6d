/**
 * The planner of `.solstice/workflow.kdl`: parsed, validated, matrix jobs expanded, `when`
 * applied to the trigger. One of the planners of plan-definitions.ts.
 */
import { ApplicationFailure } from '@temporalio/common';
import { expandJob, formatDiagnostics, parseWorkflowFile, whenMatches } from '../workflow-file';
import type { PipelineEvent, PipelinePlan, PlannedJob } from '../model/domain';
import { branchOf } from '../model/domain';
import { WORKFLOW_FILE_PATH } from '../model/job-definition-paths';

export function planFromWorkflowFile(
  text: string,
  req: { ref?: string; event: PipelineEvent },
): PipelinePlan {
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
