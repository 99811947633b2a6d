/**
 * What a plan is made for: the event, the commit and the settings that shape it. A file of
 * its own because both plan-definitions.ts and the planners it chooses (actions-plan.ts)
 * need it, and a planner must not import the module that chooses it.
 */
import type { PipelineEvent } from '../model/domain';

export interface PlanTrigger {
  ref?: string;
  event: PipelineEvent;
  /** runs-on of a job.sh pipeline's one job. */
  label: string;
  /** The commit (Actions expressions see it as github.sha). */
  sha: string;
  repoUrl?: string;
  /** `solstice enqueue --workflow F --input k=v`: run Actions workflow F as workflow_dispatch. */
  dispatch?: { workflow: string; inputs: Record<string, string> };
  /**
   * A push's changed files (its before..after diff), for Actions `paths` filters; absent:
   * unknown (a new branch, a pull request, a diff that could not be made), and they match.
   */
  changedFiles?: string[];
  /** SOLSTICE_ACTIONS_RUNS_ON; absent: its default. */
  actionsRunsOn?: Record<string, string[]>;
}
