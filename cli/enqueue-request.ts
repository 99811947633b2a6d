/**
 * What `solstice enqueue` asks for, as a JobRequest v1: a local repository's commit resolved
 * (and checked to have something to run) here, a remote one's taken as given. Used by the
 * direct and the remote (API) mode alike, so both validate the same way before starting anything.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { resolveLocalCommit } from '../ingress/local-commit';
import { isLocalRepo } from '../model/repo-url';
import { newJobRequest, type JobRequestV1 } from '../model/job-request';
import { InputError } from '../platform/errors';

export interface EnqueueArgs {
  repo: string;
  /** Default: HEAD, or the tip of `branch`. */
  commit?: string;
  /** Run as this event (default manual): `when` filters and cancel-superseded see it. */
  event?: 'push' | 'pull_request' | 'manual';
  /** Run as on this branch: the ref recorded is refs/heads/<branch>. */
  branch?: string;
  label?: string;
  timeout?: string;
  follow: boolean;
  /** Start the workflow directly instead of publishing a JobRequest through RabbitMQ. */
  direct?: boolean;
  /** --job-timeout was given: a JobRequest cannot carry it, so say it does not apply. */
  explicitTimeout?: boolean;
  /** `--workflow F`: run Actions workflow F as workflow_dispatch, with `--input k=v` inputs. */
  workflow?: string;
  inputs?: Record<string, string>;
}

export async function requestFor(args: EnqueueArgs, out: NodeJS.WritableStream): Promise<JobRequestV1> {
  const branchRef = args.branch === undefined ? undefined : await branchRefOf(args.branch);
  const rev = args.commit ?? branchRef ?? 'HEAD';
  let repoUrl = args.repo;
  let commitSha = rev;
  let ref: string | undefined;
  if (isLocalRepo(args.repo)) {
    const resolved = await resolveLocalCommit(args.repo, rev).catch((err: unknown) => {
      // Only "the commit does not exist": the branch's tip is what was missing.
      const noTip = err instanceof InputError && err.message.startsWith(`commit "${rev}" does not exist`);
      if (args.commit !== undefined || args.branch === undefined || !noTip) throw err;
      throw new InputError(
        `branch ${args.branch} does not exist in ${args.repo}`,
        `Give --commit to run another commit as if it were on ${args.branch}.`,
      );
    });
    ({ repoUrl, commitSha, ref } = resolved);
    if (args.workflow && !(Array.isArray(resolved.definition) && resolved.definition.includes(args.workflow)))
      throw new InputError(
        `commit ${commitSha.slice(0, 12)} runs no Actions workflow ${args.workflow}`,
        Array.isArray(resolved.definition)
          ? `its workflows: ${resolved.definition.join(', ')}`
          : `it runs ${resolved.definition}, which wins over Actions workflows`,
      );
    if (resolved.dirty)
      out.write(
        `note: ${repoUrl} has uncommitted changes; the job runs commit ${commitSha.slice(0, 12)} without them\n`,
      );
  } else if (!/^[0-9a-f]{40}$/.test(rev)) {
    throw new InputError(
      `for a remote repository, --commit must be a full 40-character commit sha, got "${args.commit ?? rev}"`,
    );
  }
  const event = args.event ?? 'manual';

  // One request whichever way it starts: the bridge and a direct start derive the same workflow
  // id from it. The delivery id makes this enqueue one event: it starts once even if the
  // message is delivered twice, and a second `solstice enqueue` is a second run.
  const r = newJobRequest({
    source: 'manual',
    repoUrl,
    commitSha,
    ref: branchRef ?? ref ?? commitSha,
    ...(event !== 'manual' ? { event } : {}),
    runsOn: args.label,
    ...(args.workflow ? { workflowPath: args.workflow, inputs: args.inputs ?? {} } : {}),
    deliveryId: `enqueue-${randomUUID()}`,
  });
  return r;
}

/** `--branch B` as the ref a push of it has, refs/heads/B; a name git would refuse is refused. */
async function branchRefOf(branch: string): Promise<string> {
  const ref = `refs/heads/${branch}`;
  try {
    await promisify(execFile)('git', ['check-ref-format', ref]);
  } catch {
    throw new InputError(
      `--branch "${branch}" is not a valid branch name`,
      'See `git help check-ref-format`.',
    );
  }
  return ref;
}

/** `--input k=v` flags → inputs; a flag without `=` is refused. */
export function parseInputs(flags: readonly string[]): Record<string, string> {
  const inputs: Record<string, string> = {};
  for (const f of flags) {
    const eq = f.indexOf('=');
    if (eq <= 0) throw new InputError(`--input must be name=value, got "${f}"`);
    Object.defineProperty(inputs, f.slice(0, eq), { value: f.slice(eq + 1), enumerable: true });
  }
  return inputs;
}
