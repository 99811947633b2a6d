/** `solstice enqueue` (and `ci-local`): validating a commit, then starting its pipeline. */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { AmqpConnection, connectIfReachable, installationTopology } from '../ingress/amqp';
import { readInstallationId } from '../storage/installation';
import type { Config } from '../platform/config';
import { resolveLocalCommit } from '../ingress/local-commit';
import { isLocalRepo } from '../model/repo-url';
import { pipelineIdsForRequest } from '../ingress/pipeline-start';
import { encodeJobRequest, JOB_REQUEST_V1, newJobRequest, type JobRequestV1 } from '../model/job-request';
import { createLogger } from '../platform/logger';
import { InputError } from '../platform/errors';
import type { Store } from './context';
import { enqueuePipeline, showPipeline } from './pipelines';

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

/**
 * Publishes the request through RabbitMQ for the bridge to start. Returns undefined, after
 * saying why, when that path is not available (broker unreachable, or no bridge consuming:
 * the message would only wait), so the caller starts the job directly.
 */
async function enqueueViaAmqp(
  cfg: Config,
  store: Store,
  r: JobRequestV1,
  out: NodeJS.WritableStream,
  explicitTimeout = false,
): Promise<{ pipelineId: string; workflowId: string } | undefined> {
  const log = createLogger('solstice-enqueue');
  log.level = 'error';
  const topology = await installationTopology(cfg, () => readInstallationId(store.db));
  const amqp = await connectIfReachable({ url: cfg.amqpUrl, log, name: 'solstice enqueue', topology });
  if (!(amqp instanceof AmqpConnection)) {
    out.write(`note: ${amqp.unreachable}; starting the job directly\n`);
    return undefined;
  }
  try {
    const { consumerCount } = await amqp.withChannel((ch) => ch.checkQueue(topology.queue));
    if (consumerCount === 0) {
      out.write(`note: no bridge consumes ${topology.queue} at ${amqp.url}; starting the job directly\n`);
      return undefined;
    }
    const publisher = amqp.publisher();
    try {
      await publisher.publish(encodeJobRequest(r), {
        headers: { schema_version: JOB_REQUEST_V1 },
        messageId: r.request_id,
      });
    } finally {
      await publisher.close();
    }
    out.write(`queued request ${r.request_id} on ${amqp.url}\n`);
    if (explicitTimeout)
      out.write(
        'note: --job-timeout applies to direct starts only; the bridge uses its own SOLSTICE_JOB_TIMEOUT\n',
      );
    return pipelineIdsForRequest(r);
  } finally {
    await amqp.close();
  }
}

/** Shared by `enqueue` and `ci-local`. Validates first, so bad input starts nothing. */
export async function enqueue(
  cfg: Config,
  store: Store,
  args: EnqueueArgs,
  out: NodeJS.WritableStream,
): Promise<number> {
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
  const started = args.direct ? undefined : await enqueueViaAmqp(cfg, store, r, out, args.explicitTimeout);
  // Either way a commit runs as a pipeline: its workflow file's jobs, or job.sh as one job.
  if (!started) return enqueuePipeline(cfg, store, r, args.follow, out);
  return showPipeline(cfg, store, started, args.follow, out);
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
