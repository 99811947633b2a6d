/**
 * Activities: everything JobWorkflow does that touches the world. Built by a factory so a
 * worker injects its database, provider and settings (and tests inject theirs).
 */
import { heartbeat, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { BlobStore } from '../common/blob-store';
import { hashJobToken, newJobToken } from '../common/job-token';
import type { JobStore } from '../common/job-store';
import { renderSeed } from '../provisioning/cloud-init';
import { machineIdFor, type Provider } from '../provisioning/contract';
import type { JobDefinitionSpec, JobInput, JobOutcome, MachineRef } from '../workflows/types';
import { finalizeLog } from './finalize-log';
import { createPipelineActivities } from './pipeline';

export interface ActivityDeps {
  jobs: JobStore;
  blobs: BlobStore;
  /** Providers by label. */
  providers: ReadonlyMap<string, Provider>;
  hostId: string;
  hostTaskQueue: string;
  runnerUrl: string;
  contactAddr: string;
}

const CONSOLE_TAIL_BYTES = 16 * 1024;

export function createActivities(deps: ActivityDeps) {
  function providerFor(label: string): Provider {
    const provider = deps.providers.get(label);
    if (!provider) {
      const known = [...deps.providers.keys()].sort().join(', ');
      throw ApplicationFailure.nonRetryable(
        `no machine image or provider for label "${label}" on host ${deps.hostId}; known labels: ${known}`,
        'UnknownLabel',
      );
    }
    return provider;
  }

  // Destroy goes by the provider that made the machine, whatever label it was for.
  function providerNamed(name: string): Provider {
    const provider = [...deps.providers.values()].find((p) => p.name === name);
    if (!provider)
      throw ApplicationFailure.retryable(
        `provider "${name}" is not configured on host ${deps.hostId}; its machines cannot be destroyed until it is`,
        'UnknownProvider',
      );
    return provider;
  }

  return {
    ...createPipelineActivities(deps),

    async recordJob(input: JobInput, workflowId: string): Promise<void> {
      await deps.jobs.recordJob(input, workflowId);
    },

    async provisionMachine(req: {
      jobId: string;
      attempt: number;
      label: string;
      definition?: JobDefinitionSpec;
    }): Promise<MachineRef> {
      const provider = providerFor(req.label);
      const job = await deps.jobs.getJob(req.jobId);
      if (!job) throw ApplicationFailure.nonRetryable(`job ${req.jobId} is not recorded`, 'UnknownJob');
      // The token exists only here and in the machine's seed; the workflow history never sees it.
      const token = newJobToken();
      await deps.jobs.beginAttempt(req.jobId, req.attempt, hashJobToken(token));
      const machineId = machineIdFor(req.jobId, req.attempt);
      const hostView = { runnerUrl: deps.runnerUrl, contactAddr: deps.contactAddr, repoUrl: job.repoUrl };
      const guest = provider.guestEndpoints?.(hostView) ?? hostView;
      const seed = renderSeed({
        machineId,
        jobId: req.jobId,
        token,
        runnerUrl: guest.runnerUrl,
        contactAddr: guest.contactAddr,
        repoUrl: guest.repoUrl,
        commitSha: job.commitSha,
        hostId: deps.hostId,
        definition: req.definition,
      });
      heartbeat('creating machine');
      const handle = await provider.create({
        jobId: req.jobId,
        attempt: req.attempt,
        label: req.label,
        repoUrl: job.repoUrl,
        seed,
      });
      await deps.jobs.recordMachine({
        id: handle.machineId,
        jobId: req.jobId,
        provider: handle.provider,
        host: handle.hostId,
        attempt: req.attempt,
        handle: handle.details,
      });
      log.info('machine created', { machineId, provider: provider.name });
      return { handle, hostTaskQueue: deps.hostTaskQueue };
    },

    async destroyMachine(req: {
      jobId: string;
      ref: MachineRef;
      keepConsole: boolean;
      reason?: string;
    }): Promise<void> {
      const provider = providerNamed(req.ref.handle.provider);
      if (req.keepConsole) {
        // A machine that never phoned home explains itself through its console.
        const tail = await provider.consoleTail(req.ref.handle, CONSOLE_TAIL_BYTES);
        const lines = [`${req.reason ?? 'machine destroyed'}; its console ended with:`, ...tail.split('\n')];
        const after = await deps.jobs.lastLogSeq(req.jobId);
        const now = new Date();
        await deps.jobs.appendLogLines(
          req.jobId,
          lines.map((text, i) => ({ seq: after + i + 1, stream: 'console', text, time: now })),
        );
      }
      heartbeat('destroying machine');
      await provider.destroy(req.ref.handle);
      await deps.jobs.machineDestroyed(req.ref.handle.machineId);
    },

    async finalizeJob(jobId: string, outcome: JobOutcome): Promise<void> {
      await deps.jobs.finalize(jobId, outcome);
      await finalizeLog(deps.jobs, deps.blobs, jobId);
    },
  };
}
