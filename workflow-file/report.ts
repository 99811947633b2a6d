/**
 * A workflow file's check as one JSON-ready object: what `solstice workflow validate --json`
 * prints and what POST /api/v1/workflow/validate answers, which promise the same fields.
 */
import { jobGraph } from './dag';
import type { Diagnostic, ParseResult, WorkflowFile } from './model';

export interface CheckReport {
  ok: boolean;
  errors: number;
  warnings: number;
  diagnostics: Diagnostic[];
  workflow: WorkflowFile | null;
  graph: { order: string[]; stages: string[][] } | null;
}

export function checkReport(result: ParseResult): CheckReport {
  const errors = result.diagnostics.filter((d) => d.severity === 'error').length;
  const graph = result.workflow ? jobGraph(result.workflow.jobs) : undefined;
  return {
    ok: result.ok,
    errors,
    warnings: result.diagnostics.length - errors,
    diagnostics: result.diagnostics,
    workflow: result.workflow ?? null,
    graph: graph ? { order: graph.order, stages: graph.stages } : null,
  };
}
