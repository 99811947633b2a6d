// Entry point the worker bundles: every workflow type lives here.
export { JobWorkflow } from './job';
export { PipelineWorkflow } from './pipeline';
export { RetentionWorkflow } from './retention';
export { PoolWorkflow } from './pool';
