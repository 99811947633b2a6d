/**
 * Starts a workflow by its type, checked against the functions the worker registers
 * (workflows/index.ts). The reference is a type only and erased when compiled, so the processes
 * that start runs never load workflow code, yet a renamed workflow or a changed input fails the
 * compile rather than a run.
 */
import type { Client, WorkflowHandleWithStartDetails, WorkflowStartOptions } from '@temporalio/client';
import type * as workflows from '../workflows';

type Workflows = typeof workflows;
/** A workflow type the worker registers: the name its function is exported under. */
export type WorkflowType = keyof Workflows;

export function startWorkflow<K extends WorkflowType>(
  client: Client,
  type: K,
  options: WorkflowStartOptions<Workflows[K]>,
): Promise<WorkflowHandleWithStartDetails<Workflows[K]>> {
  return client.workflow.start<Workflows[K]>(type, options);
}
