/** Activities of PipelineWorkflow: read the plan at the commit and keep the pipeline tables current. */
import { PipelineStore } from '../storage/pipeline-store';
import type { JobStore } from '../storage/job-store';
import type { PipelineInput, PipelineJobState, PipelinePlan, PipelineState } from '../model/domain';
import { loadPipelinePlan, type PlanRequest } from './commit-plan';
import { warmPlanThread } from './plan-thread';
import { gitAuthHeader, type GitCredentialConfig } from '../forges/git-credential';

export function createPipelineActivities(deps: {
  jobs: JobStore;
  pipelines?: PipelineStore;
  actionsRunsOn?: Record<string, string[]>;
  gitCredentials?: GitCredentialConfig;
  planGitCacheDir?: string;
}) {
  const pipelines = deps.pipelines ?? new PipelineStore(deps.jobs.db);
  // The first plan should not pay for starting the parsing thread.
  warmPlanThread();
  return {
    async recordPipeline(input: PipelineInput, workflowId: string): Promise<void> {
      await pipelines.recordPipeline(input, workflowId);
    },

    async loadPipelinePlan(req: PlanRequest): Promise<PipelinePlan> {
      // Looked up here, not passed in: the token must not enter the workflow's history.
      const authHeader = deps.gitCredentials
        ? gitAuthHeader(deps.gitCredentials, { source: req.source ?? 'manual', repoUrl: req.repoUrl })
        : undefined;
      return loadPipelinePlan(req, {
        actionsRunsOn: deps.actionsRunsOn,
        ...(authHeader ? { authHeader } : {}),
        ...(deps.planGitCacheDir ? { gitCacheDir: deps.planGitCacheDir } : {}),
      });
    },

    async recordPipelineJobs(
      pipelineId: string,
      jobs: { name: string; needs: string[]; state: PipelineJobState; jobId?: string; message?: string }[],
    ): Promise<void> {
      await pipelines.recordJobs(pipelineId, jobs);
    },

    async updatePipelineJob(
      pipelineId: string,
      name: string,
      change: { state: PipelineJobState; jobId?: string; message?: string },
    ): Promise<void> {
      await pipelines.updateJob(pipelineId, name, change);
    },

    async finalizePipeline(pipelineId: string, state: PipelineState, message?: string): Promise<void> {
      await pipelines.finalize(pipelineId, state, message);
    },

    /**
     * Workflow ids of the older running push pipelines of the same branch, for the caller to
     * cancel; each is marked with why.
     */
    async supersededPipelines(pipelineId: string): Promise<string[]> {
      const ids = await pipelines.supersededBy(pipelineId);
      if (ids.length > 0) await pipelines.noteSuperseded(ids, pipelineId);
      return ids;
    },
  };
}
