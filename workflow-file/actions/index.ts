/**
 * Forgejo / Gitea / GitHub Actions workflow files (`.forgejo/workflows`, `.gitea/workflows`,
 * `.github/workflows`), run as they are for the subset in docs/actions.md. KDL stays the native
 * format and wins when a commit has both.
 */
export { parseActionsWorkflow, MAX_ACTIONS_FILE_BYTES, type ActionsParseResult } from './parse';
export {
  planActions,
  pickWorkflowFiles,
  workflowEvent,
  workflowStem,
  labelFor,
  filterPattern,
  type ActionsTrigger,
  type ActionsPlan,
  type ActionsPlanOptions,
  type ActionsJobContext,
  type FileDiagnostics,
} from './plan';
export { expandMatrix, MatrixError, MAX_ACTIONS_MATRIX } from './matrix';
export * from './model';
