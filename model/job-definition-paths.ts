/**
 * Where a repository keeps what Solstice runs, relative to its root. The planner, `solstice
 * enqueue`, `solstice workflow` and the runner all look there, so the paths live in one place.
 * Pure constants: safe in the workflow sandbox and in the runner bundle.
 */

/** The folder both files live in. */
export const JOB_DEFINITION_DIR = '.solstice';

/** The workflow file: jobs, steps, matrix, `when` (docs/workflow-file.md). */
export const WORKFLOW_FILE_PATH = `${JOB_DEFINITION_DIR}/workflow.kdl` as const;

/** Without a workflow file: a `/bin/sh` script run as a one-step, one-job pipeline. */
export const JOB_SCRIPT_PATH = `${JOB_DEFINITION_DIR}/job.sh` as const;

/** In the order they are looked for: a workflow file wins over job.sh. */
export const JOB_DEFINITION_PATHS = [WORKFLOW_FILE_PATH, JOB_SCRIPT_PATH] as const;

/**
 * Without `.solstice/workflow.kdl`: Forgejo / Gitea / GitHub Actions workflows, in the order
 * Forgejo looks for them (the first folder that has workflow files is the one read).
 */
export const ACTIONS_WORKFLOW_DIRS = ['.forgejo/workflows', '.gitea/workflows', '.github/workflows'] as const;

export type JobDefinitionPath = (typeof JOB_DEFINITION_PATHS)[number];
