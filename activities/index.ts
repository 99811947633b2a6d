/**
 * Activities: everything JobWorkflow does that touches the world. Built by a factory so a
 * worker injects its database, provider and settings (and tests inject theirs).
 */
import { trace } from '@opentelemetry/api';
import { Context, heartbeat, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { BlobStore } from '../storage/blob-store';
import { InputError } from '../platform/errors';
import { hashJobToken, newJobToken } from '../model/job-token';
import { SecretStore } from '../storage/secret-store';
import type { JobStore } from '../storage/job-store';
import { instruments } from '../platform/metrics';
import { ATTR, repoAttribute } from '../model/span-attributes';
import { injectTraceContext } from '../platform/telemetry';
import { jobFileText, renderSeed, type RunnerContext } from '../provisioning/cloud-init';
import { machineIdFor, type GuestEndpoints, type Provider } from '../provisioning/contract';
import type { JobInput, JobOutcome, MachineHandle, MachineRef } from '../model/domain';
import type { JobDefinition } from '../model/job-file';
import { createCapacityActivities, type CapacityDeps } from './capacity';
import { finalizeLog } from './finalize-log';
import { createPipelineActivities } from './pipeline';
import type { GitCredentialConfig } from '../forges/git-credential';
import { createRetentionActivities } from './retention';
import { claimPoolMachine, createPoolActivities, kickPool, type PoolDeps } from './pool';
import { PoolStore } from '../capacity/pool-store';
import type { PoolSpec } from '../capacity/pool-spec';

/**
 * Added to a token's boot and run timeouts: the machine is created after the token is minted
 * (an image copy can take minutes) and the workflow's timers start later still. The job's end
 * revokes the token long before this matters; expiry is for a workflow that never ends well.
 */
const TOKEN_EXPIRY_GRACE_MS = 30 * 60_000;

export interface ActivityDeps extends CapacityDeps {
  jobs: JobStore;
  blobs: BlobStore;
  /** Providers by label. */
  providers: ReadonlyMap<string, Provider>;
  hostId: string;
  hostTaskQueue: string;
  runnerUrl: string;
  contactAddr: string;
  /** Where the values of the secrets a job names come from. */
  secrets?: SecretStore;
  /** PEM CA certificate(s) runners verify the log service's TLS certificate with; unset: plaintext. */
  tlsCaPem?: string;
  /** Where the runner sends its spans (OTLP/gRPC); unset: the runner exports none. */
  runnerOtlpEndpoint?: string;
  /** SOLSTICE_MACHINE_LIVENESS: a running job's machine not heard from this long is lost. */
  machineLivenessMs: number;
  /** SOLSTICE_ACTIONS_RUNS_ON: which machine label runs an Actions job's runs-on. */
  actionsRunsOn?: Record<string, string[]>;
  /** The forge token planning fetches private repositories with (forges/git-credential.ts). */
  gitCredentials?: GitCredentialConfig;
  /** The host repository cache planning fetches into (commit-plan.ts); unset: a folder per plan. */
  planGitCacheDir?: string;
  /** Warm pools of this host, by label (capacity/pool-spec.ts); none: every machine boots cold. */
  pools?: Readonly<Record<string, PoolSpec>>;
  /** SOLSTICE_BOOT_TIMEOUT: a pool machine whose runner never called within it is dead. */
  bootTimeoutMs?: number;
}

const CONSOLE_TAIL_BYTES = 16 * 1024;

function warmNote(label: string, idleMs: number): string {
  return `warm VM from pool ${label}, idle ${Math.round(idleMs / 1000)} s`;
}

/**
 * Four heartbeats per liveness window: three may be lost (a slow network, a busy log service)
 * before a live machine would be taken for dead.
 */
export function heartbeatIntervalFor(livenessMs: number): number {
  return Math.max(100, Math.floor(livenessMs / 4));
}

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

  const pools = deps.pools ?? {};
  const poolDeps: PoolDeps = {
    pool: new PoolStore(deps.jobs.db),
    capacity: deps.capacity,
    schedule: deps.schedule,
    pools,
    providers: deps.providers,
    hostId: deps.hostId,
    runnerUrl: deps.runnerUrl,
    contactAddr: deps.contactAddr,
    tlsCaPem: deps.tlsCaPem,
    machineLivenessMs: deps.machineLivenessMs,
    bootTimeoutMs: deps.bootTimeoutMs ?? 5 * 60_000,
  };

  return {
    ...createPipelineActivities(deps),
    ...createPoolActivities(poolDeps),
    ...createCapacityActivities(deps),
    ...createRetentionActivities(deps),

    async recordJob(input: JobInput, workflowId: string): Promise<void> {
      await deps.jobs.recordJob(input, workflowId);
    },

    async provisionMachine(req: {
      jobId: string;
      attempt: number;
      label: string;
      definition?: JobDefinition;
      /** How long the job may need its token: boot plus run timeout (absent: until the job ends). */
      tokenValidForMs?: number;
    }): Promise<MachineRef> {
      const provider = providerFor(req.label);
      const job = await deps.jobs.getJob(req.jobId);
      if (!job) throw ApplicationFailure.nonRetryable(`job ${req.jobId} is not recorded`, 'UnknownJob');
      // Values of the secrets the job names: looked up here, so they never enter workflow history.
      let secrets: Record<string, string>;
      try {
        secrets = (deps.secrets ?? SecretStore.empty()).resolve(req.definition?.secrets ?? []);
      } catch (err) {
        if (err instanceof InputError) throw ApplicationFailure.nonRetryable(err.message, 'UnknownSecret');
        throw err;
      }
      // The activity's span (from the Temporal interceptors), which the runner's span continues.
      trace.getActiveSpan()?.setAttributes({
        [ATTR.jobId]: req.jobId,
        [ATTR.repo]: repoAttribute(job.repoUrl),
        [ATTR.commit]: job.commitSha,
      });
      if (req.attempt === 1 && Context.current().info.attempt === 1) {
        instruments().queueWait.record((Date.now() - job.createdAt.getTime()) / 1000);
      }
      // The token exists only here and in the machine's seed; the workflow history never sees it.
      const token = newJobToken();
      const expiresAt =
        req.tokenValidForMs === undefined
          ? undefined
          : new Date(Date.now() + req.tokenValidForMs + TOKEN_EXPIRY_GRACE_MS);
      await deps.jobs.beginAttempt(req.jobId, req.attempt, hashJobToken(token), expiresAt);
      const machineId = machineIdFor(req.jobId, req.attempt);
      const hostView: GuestEndpoints = {
        runnerUrl: deps.runnerUrl,
        contactAddr: deps.contactAddr,
        repoUrl: job.repoUrl,
        otlpEndpoint: deps.runnerOtlpEndpoint,
      };
      const guest = provider.guestEndpoints?.(hostView) ?? hostView;
      const runner: RunnerContext = {
        machineId,
        jobId: req.jobId,
        token,
        runnerUrl: guest.runnerUrl,
        contactAddr: guest.contactAddr,
        tlsCa: deps.tlsCaPem,
        secrets,
        repoUrl: guest.repoUrl,
        commitSha: job.commitSha,
        hostId: deps.hostId,
        definition: req.definition,
        traceparent: injectTraceContext().traceparent,
        otlpEndpoint: guest.otlpEndpoint,
        heartbeatIntervalMs: heartbeatIntervalFor(deps.machineLivenessMs),
      };

      let origin: string | undefined;
      if (pools[req.label]) {
        // A pool VM was booted for no repository: one the provider serves to the guest itself
        // (a host folder under QEMU) it attaches at the claim, before the runner can start.
        const attach = provider.attachRepository?.bind(provider);
        const warm =
          guest.repoUrl !== job.repoUrl && !attach
            ? ({
                warm: false,
                why: 'the repository is a host folder, which only a VM booted for it can reach',
              } as const)
            : await claimPoolMachine(poolDeps, {
                jobId: req.jobId,
                attempt: req.attempt,
                label: req.label,
                jobFile: (idleMs) => jobFileText({ ...runner, machineNote: warmNote(req.label, idleMs) }),
                ...(attach && guest.repoUrl !== job.repoUrl
                  ? { prepare: (handle: MachineHandle) => attach(handle, job.repoUrl) }
                  : {}),
              });
        await kickPool(deps.hostId);
        if (warm.warm) {
          log.info('machine claimed from the pool', {
            machineId: warm.handle.machineId,
            idleMs: warm.idleMs,
          });
          return {
            handle: warm.handle,
            hostTaskQueue: deps.hostTaskQueue,
            origin: warmNote(req.label, warm.idleMs),
          };
        }
        origin = `cold boot: ${warm.why}`;
        runner.machineNote = origin;
      }
      const seed = renderSeed(runner);
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
      return { handle, hostTaskQueue: deps.hostTaskQueue, ...(origin ? { origin } : {}) };
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

    /**
     * How long the attempt's runner has been silent (by the database's clock, which the log
     * service stamped its last contact with), the window after which that means lost, and the
     * host TTL (after which a silent host counts as gone: how long a lost machine's destroy may
     * wait for its host's worker).
     */
    async checkMachineContact(req: {
      jobId: string;
      attempt: number;
    }): Promise<{ silentMs: number; livenessMs: number; hostTtlMs: number }> {
      const silentMs = await deps.jobs.runnerSilence(req.jobId, req.attempt);
      return {
        silentMs: silentMs ?? deps.machineLivenessMs,
        livenessMs: deps.machineLivenessMs,
        hostTtlMs: deps.schedule.hostTtlMs,
      };
    },

    /**
     * The attempt's machine is lost: its token stops working (a runner cut off, not dead, can
     * store nothing more), its running steps read `interrupted`, and the job's log says why.
     */
    async recordMachineLost(req: { jobId: string; attempt: number; message: string }): Promise<void> {
      await deps.jobs.machineLost(req.jobId, req.attempt, req.message);
      log.warn(req.message, { jobId: req.jobId, attempt: req.attempt });
    },

    async finalizeJob(jobId: string, outcome: JobOutcome): Promise<void> {
      trace.getActiveSpan()?.setAttribute(ATTR.jobId, jobId);
      await deps.jobs.finalize(jobId, outcome);
      await finalizeLog(deps.jobs, deps.blobs, jobId);
      instruments().jobsFinished.add(1, { state: outcome.state });
    },
  };
}
