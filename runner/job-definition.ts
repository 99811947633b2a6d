/**
 * Finds what to run in the checked-out commit when the job file gives no steps: `.solstice/job.sh`.
 * A commit that only has `.solstice/workflow.kdl` is reported as not runnable that way (its jobs
 * get their steps from the pipeline) rather than silently passing.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { JOB_SCRIPT_PATH, WORKFLOW_FILE_PATH } from '../model/job-definition-paths';

export type JobDefinition =
  { kind: 'script'; path: string; alsoHasWorkflow: boolean } | { kind: 'missing'; message: string };

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

export async function findJobDefinition(checkoutDir: string, commitSha: string): Promise<JobDefinition> {
  const script = path.join(checkoutDir, JOB_SCRIPT_PATH);
  const hasWorkflow = await isFile(path.join(checkoutDir, WORKFLOW_FILE_PATH));
  if (await isFile(script)) return { kind: 'script', path: script, alsoHasWorkflow: hasWorkflow };
  if (hasWorkflow) {
    return {
      kind: 'missing',
      message:
        `commit ${commitSha} has ${WORKFLOW_FILE_PATH} but no ${JOB_SCRIPT_PATH}, and this job was given no steps: ` +
        `run the commit as a pipeline (solstice enqueue), which gives each job its steps, or add ${JOB_SCRIPT_PATH}`,
    };
  }
  return {
    kind: 'missing',
    message:
      `commit ${commitSha} has no job definition: add ${JOB_SCRIPT_PATH} (a /bin/sh script run from the ` +
      `repository root; its exit code is the job's result)`,
  };
}
