/** Job contexts for tests that drive the runner's code directly, without a job file. */
import type { JobContext } from '../../runner/job-context';

/**
 * The runner's defaults (runner/job-context.ts) around what a test names: the repository, the
 * commit and the workdir it checks out into or runs in. The log service's address is one nobody
 * listens on, because checkout and the job script never call it.
 */
export function jobContext(
  fields: Pick<JobContext, 'repoUrl' | 'commitSha' | 'workdir'> & Partial<JobContext>,
): JobContext {
  return {
    jobId: 'j',
    token: 't',
    contactAddr: '127.0.0.1:1',
    heartbeatIntervalMs: 15_000,
    retryForMs: 1000,
    env: {},
    secrets: {},
    artifacts: [],
    timeoutMs: 0,
    ...fields,
  };
}
