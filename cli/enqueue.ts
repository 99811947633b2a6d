/** `solstice enqueue` (and `ci-local`): validating a commit, then starting its pipeline. */
import { AmqpConnection, connectIfReachable, installationTopology } from '../ingress/amqp';
import { readInstallationId } from '../storage/installation';
import type { Config } from '../platform/config';
import { pipelineIdsForRequest } from '../ingress/pipeline-start';
import { encodeJobRequest, JOB_REQUEST_V1, type JobRequestV1 } from '../model/job-request';
import { createLogger } from '../platform/logger';
import type { Store } from './context';
import { enqueuePipeline, showPipeline, type StartedPipeline } from './pipelines';
import { requestFor, type EnqueueArgs } from './enqueue-request';

export { parseInputs } from './enqueue-request';

export type { EnqueueArgs };

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
): Promise<StartedPipeline | undefined> {
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
  /** Told the pipeline's ids once it is started or queued (ci-local cancels it on Ctrl-C). */
  onStarted?: (started: StartedPipeline) => void,
): Promise<number> {
  const r = await requestFor(args, out);
  const started = args.direct ? undefined : await enqueueViaAmqp(cfg, store, r, out, args.explicitTimeout);
  // Either way a commit runs as a pipeline: its workflow file's jobs, or job.sh as one job.
  if (!started) return enqueuePipeline(cfg, store, r, args.follow, out, onStarted);
  onStarted?.(started);
  return showPipeline(cfg, store, started, args.follow, out);
}
