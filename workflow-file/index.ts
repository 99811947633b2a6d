/**
 * `.solstice/workflow.kdl`: parse, validate and inspect workflow files.
 * The language is documented in docs/workflow-file.md.
 */
export { parseWorkflowFile } from './parse';
export { jobGraph, transitiveDependents, type JobGraph } from './dag';
export {
  expandJob,
  combinations,
  matrixEnvName,
  matrixSize,
  MAX_MATRIX_INSTANCES,
  type JobInstance,
} from './matrix';
export { whenMatches } from './when';
export { WORKFLOW_FILE_LIMITS } from './limits';
export { parseWorkflowDuration, formatDuration, MAX_TIMEOUT_MS } from './duration';
export { formatDiagnostic, formatDiagnostics, summarise } from './format';
export { checkReport, type CheckReport } from './report';
export { didYouMean, editDistance } from './suggest';
export * from './model';
export { WORKFLOW_FILE_PATH } from '../model/job-definition-paths';
