/**
 * A job's steps grouped by machine attempt, for every reader that shows them (CLI, job page).
 * Pure and free of the database client, so a CLI command that only formats does not load it.
 */
import type { JobStepRecord, LostAttemptRecord, StepTable } from './job-store';

export interface AttemptSteps {
  attempt: number;
  steps: JobStepRecord[];
  /** Set when the attempt's machine was lost, which is why another attempt followed. */
  lost?: LostAttemptRecord;
}

/** A step table by attempt, oldest first: every attempt that has steps or lost its machine. */
export function attemptsOf(table: StepTable): AttemptSteps[] {
  const numbers = [...new Set([...table.steps, ...table.lost].map((x) => x.attempt))].sort((a, b) => a - b);
  return numbers.map((attempt) => {
    const lost = table.lost.find((l) => l.attempt === attempt);
    return { attempt, steps: table.steps.filter((st) => st.attempt === attempt), ...(lost ? { lost } : {}) };
  });
}
