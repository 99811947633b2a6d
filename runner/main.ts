/**
 * solstice-runner: the agent inside a job's machine. Cloud-init downloads the bundle of this
 * file (dist/runner/runner.js) from SOLSTICE_RUNNER_URL and runs it with the job's context in
 * the environment or in /etc/solstice/job.yaml. It must run on Node 18 (Debian's), so it uses
 * no Node 20-only APIs.
 *
 * Exit code: the job script's own when it ran; otherwise see EXIT in ./errors.
 */
import { existsSync } from 'node:fs';
import { JOB_SCRIPT_PATH } from '../model/job-definition-paths';
import { JOB_FILE_PATH } from '../model/job-file';
import { GIT_CACHE_ENV } from '../model/host-cache';
import { SolsticeError } from '../platform/errors';
import { diag } from './diag';
import { EXIT } from './errors';
import { loadJobContext, RETRY_FOR_ENV } from './job-context';
import { POOL_FILE_ENV, waitForAssignment } from './pool-wait';
import { parseDuration } from '../platform/units';
import { runJob } from './run-job';
import { RUNNER_VERSION } from './version';

const USAGE = `solstice-runner ${RUNNER_VERSION}
Runs one Solstice CI job: checks out SOLSTICE_REPO_URL at SOLSTICE_COMMIT_SHA, runs
the job file's steps (or ${JOB_SCRIPT_PATH}) and streams their output to the log service at
ORCH_CONTACT_ADDR.

Settings (environment, or keys of the YAML file SOLSTICE_JOB_FILE, default ${JOB_FILE_PATH}):
  SOLSTICE_JOB_ID      job_id        SOLSTICE_REPO_URL    repo_url
  SOLSTICE_JOB_TOKEN   token         SOLSTICE_COMMIT_SHA  commit_sha
  ORCH_CONTACT_ADDR    contact_addr  SOLSTICE_WORKDIR     workdir (default ~/work)
`;

export async function main(argv: string[]): Promise<number> {
  if (argv.includes('--version')) {
    process.stdout.write(`${RUNNER_VERSION}\n`);
    return 0;
  }
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    // A warm-pool machine has no job yet: it waits for one, which then lands in the job file.
    const poolFile = process.env[POOL_FILE_ENV]?.trim();
    if (poolFile && existsSync(poolFile)) {
      const retryFor = process.env[RETRY_FOR_ENV];
      await waitForAssignment(
        poolFile,
        process.env.SOLSTICE_JOB_FILE?.trim() || JOB_FILE_PATH,
        retryFor ? parseDuration(retryFor, RETRY_FOR_ENV) : 2 * 60_000,
      );
      // The job's steps inherit this environment: nothing of the pool's waiting is theirs.
      delete process.env[POOL_FILE_ENV];
    }
    const ctx = loadJobContext(process.env);
    // The cache is checkout's; the job's steps inherit this environment.
    delete process.env[GIT_CACHE_ENV];
    diag(
      `solstice-runner ${RUNNER_VERSION} (node ${process.version}): job ${ctx.jobId}, log service ${ctx.contactAddr}`,
    );
    return await runJob(ctx);
  } catch (err) {
    if (err instanceof SolsticeError) {
      diag(`error: ${err.message}`);
      if (err.hint) diag(`hint: ${err.hint}`);
      return err.exitCode;
    }
    diag(`unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return EXIT.RUNNER_ERROR;
  }
}

if (require.main === module) {
  // Exit explicitly: a half-closed gRPC channel or a stray timer must not keep the VM's
  // runner alive after the job is over. stderr is synchronous for files and pipes on Linux.
  void main(process.argv.slice(2)).then((code) => process.exit(code));
}
