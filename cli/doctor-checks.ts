/**
 * `solstice doctor`: checks every dependency with the same settings the services use, and
 * says for each what is wrong and how to fix it. Each check answers on its own (a dead
 * PostgreSQL does not hide a dead Temporal), with short timeouts, and changes nothing
 * except one probe object in the blob store that it removes again.
 */
import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import amqp from 'amqplib';
import { amqpUnavailable, installationTopology, redactAmqpUrl, type Topology } from '../ingress/amqp';
import { AMQP_OFF, effectiveDatabaseUrl, SETTINGS, type Config } from '../platform/config';
import { InstallationUnknownError } from '../storage/installation';
import { installationIdOf } from './context';
import { createBlobStore } from '../storage/create-blob-store';
import { checkDatabase, describeDatabaseAddress } from '../storage/db-connection';
import { describeError, SolsticeError } from '../platform/errors';
import { migrationStatus } from '../storage/migrate';
import { connectClient, temporalTlsOptions } from '../platform/temporal';
import {
  inspectNamespace,
  SearchAttributeTypeError,
  setupCommand,
  type NamespaceState,
} from '../ingress/temporal-namespace';
import { SEARCH_ATTRIBUTE_NAMES } from '../ingress/search-attributes';
import { solsticeVersion, versionOfIdentity } from '../platform/version';

/** temporal.api.enums.v1.TaskQueueType: TASK_QUEUE_TYPE_WORKFLOW, TASK_QUEUE_TYPE_ACTIVITY. */
const TASK_QUEUE_TYPE_WORKFLOW = 1;
const TASK_QUEUE_TYPE_ACTIVITY = 2;
import { loadImageMap } from '../provisioning/qemu/image-map';
import { checkForgejoToken } from '../forges/forgejo/token-check';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  name: string;
  status: CheckStatus;
  /** What was found (ok) or what is wrong. */
  detail: string;
  /** How to fix it; set for warn and fail. */
  hint?: string;
}

export interface CheckOptions {
  /** AMQP_URL was given explicitly: RabbitMQ is then required, not optional. */
  amqpConfigured: boolean;
  /** Where to look for QEMU's programs; default PATH. */
  path?: string;
  /** The KVM device; a test may point elsewhere. */
  kvmDevice?: string;
}

const run = promisify(execFile);

function failure(name: string, err: unknown): CheckResult {
  const hint = err instanceof SolsticeError ? err.hint : undefined;
  return { name, status: 'fail', detail: describeError(err), hint };
}

/**
 * Pollers as the doctor lists them: their identities, which carry the host id and Solstice
 * version (platform/version.ts). Build ids are left out: Solstice uses no worker versioning,
 * so they are only the SDK's default.
 */
function describePollers(pollers: { identity?: string | null }[]): string {
  return pollers.map((p) => p.identity ?? '?').join(', ');
}

/**
 * Temporal itself, then what Solstice needs in its namespace: the namespace, the search
 * attributes with their types, and whether any worker polls the task queue.
 */
async function checkTemporal(cfg: Config): Promise<CheckResult[]> {
  const name = 'Temporal';
  const attrs = 'search attrs';
  const workers = 'worker';
  const skipped = (why: string): CheckResult[] => [
    { name: attrs, status: 'skip', detail: why },
    { name: workers, status: 'skip', detail: why },
  ];
  let temporal: Awaited<ReturnType<typeof connectClient>>;
  try {
    temporal = await connectClient(cfg);
  } catch (err) {
    return [failure(name, err), ...skipped('Temporal is not reachable')];
  }
  const ns = cfg.temporalNamespace;
  const setup = setupCommand(ns);
  try {
    const services = temporal.client.connection;
    let state: NamespaceState;
    try {
      state = await inspectNamespace(services, ns);
    } catch (err) {
      return [failure(name, err), ...skipped('Temporal did not answer')];
    }
    if (!state.exists)
      return [
        {
          name,
          status: 'fail',
          detail: `namespace "${ns}" does not exist on ${cfg.temporalAddress}`,
          hint: `run ${setup} (creates it and its search attributes), or set ${SETTINGS.temporalNamespace.env} to an existing one`,
        },
        ...skipped(`namespace "${ns}" does not exist`),
      ];
    const tls = temporalTlsOptions(cfg) ? (cfg.temporalTlsCertPath ? ', mTLS' : ', TLS') : '';
    const results: CheckResult[] = [
      { name, status: 'ok', detail: `${cfg.temporalAddress}${tls}, namespace "${ns}"` },
    ];
    const total = SEARCH_ATTRIBUTE_NAMES.length;
    if (state.wrongType.length > 0) {
      const e = new SearchAttributeTypeError(ns, state.wrongType);
      results.push({ name: attrs, status: 'fail', detail: e.message, hint: e.hint });
    } else if (state.missing.length > 0)
      results.push({
        name: attrs,
        status: 'fail',
        detail: `namespace "${ns}" lacks ${state.missing.join(', ')} (${state.missing.length} of ${total})`,
        hint: `run ${setup}; until then runs start without them and the Web UI cannot filter by them`,
      });
    else results.push({ name: attrs, status: 'ok', detail: `all ${total} registered as Keyword` });
    try {
      // A worker polls both kinds of task; one that polls either is listed once.
      const kinds = await Promise.all(
        [TASK_QUEUE_TYPE_WORKFLOW, TASK_QUEUE_TYPE_ACTIVITY].map((taskQueueType) =>
          services.workflowService.describeTaskQueue({
            namespace: ns,
            taskQueue: { name: cfg.taskQueue },
            taskQueueType,
          }),
        ),
      );
      const byIdentity = new Map(kinds.flatMap((q) => q.pollers ?? []).map((p) => [p.identity ?? '?', p]));
      const pollers = [...byIdentity.values()];
      const mine = solsticeVersion();
      const others = [
        ...new Set(
          pollers
            .map((p) => versionOfIdentity(p.identity ?? ''))
            .filter((v) => v !== undefined && v !== mine),
        ),
      ];
      const listed = `${pollers.length} polling ${cfg.taskQueue}: ${describePollers(pollers)}`;
      if (pollers.length === 0)
        results.push({
          name: workers,
          status: 'fail',
          detail: `no worker polls task queue "${cfg.taskQueue}" on ${cfg.temporalAddress}: pipelines would wait`,
          hint: `start one with \`solstice worker\` (or all services with \`solstice up\`), with the same ${SETTINGS.taskQueue.env} and ${SETTINGS.temporalAddress.env}`,
        });
      else if (others.length > 0)
        results.push({
          name: workers,
          status: 'warn',
          detail: `${listed}; versions ${others.join(', ')} differ from this one (${mine})`,
          hint: 'finish the rolling upgrade: every worker should run the same Solstice',
        });
      else results.push({ name: workers, status: 'ok', detail: listed });
    } catch (err) {
      results.push(failure(workers, err));
    }
    return results;
  } finally {
    await temporal.close();
  }
}

/** What machines download the runner from answers (HEAD: the bundle itself is not needed). */
async function checkRunnerUrl(cfg: Config): Promise<CheckResult> {
  const name = 'runner URL';
  const hint = `start the runner download server (\`solstice runner-serve\`, part of \`solstice up\`), or set ${SETTINGS.runnerUrl.env} to where machines can download runner.js`;
  try {
    const res = await fetch(cfg.runnerUrl, { method: 'HEAD', signal: AbortSignal.timeout(3000) });
    if (res.ok) return { name, status: 'ok', detail: `${cfg.runnerUrl} answers ${res.status}` };
    return { name, status: 'fail', detail: `${cfg.runnerUrl} answers ${res.status}`, hint };
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? describeError(err);
    return { name, status: 'fail', detail: `${cfg.runnerUrl} is not reachable (${cause})`, hint };
  }
}

/** The log service, where runners send logs, answers grpc.health.v1 at the address runners use. */
async function checkLogService(cfg: Config): Promise<CheckResult> {
  const name = 'log service';
  const address = cfg.contactAddr;
  const hint = `start the log service (\`solstice log-service\`, part of \`solstice up\`) listening on ${SETTINGS.grpcAddr.env}, or set ${SETTINGS.contactAddr.env} to where runners reach it`;
  const Health = grpc.makeGenericClientConstructor(
    healthService as unknown as grpc.ServiceDefinition,
    'Health',
  );
  const creds = cfg.grpcTlsCa
    ? grpc.credentials.createSsl(fs.readFileSync(cfg.grpcTlsCa))
    : grpc.credentials.createInsecure();
  const client = new Health(address, creds) as unknown as grpc.Client & {
    check(
      req: { service: string },
      options: grpc.CallOptions,
      cb: (err: grpc.ServiceError | null, res?: { status: string | number }) => void,
    ): void;
  };
  try {
    const status = await new Promise<string>((resolve, reject) =>
      client.check({ service: '' }, { deadline: Date.now() + 3000 }, (err, res) =>
        err ? reject(err) : resolve(String(res?.status)),
      ),
    );
    if (status === 'SERVING' || status === '1')
      return { name, status: 'ok', detail: `${address} is serving` };
    return {
      name,
      status: 'fail',
      detail: `${address} answers ${status}: it cannot reach a dependency (PostgreSQL, Temporal)`,
      hint: 'see the log service output, and the PostgreSQL and Temporal lines',
    };
  } catch (err) {
    return {
      name,
      status: 'fail',
      detail: `${address} is not reachable (${(err as grpc.ServiceError).details || describeError(err)})`,
      hint,
    };
  } finally {
    client.close();
  }
}

async function checkPostgres(cfg: Config): Promise<CheckResult> {
  const name = 'PostgreSQL';
  const url = effectiveDatabaseUrl(cfg);
  const where = describeDatabaseAddress(url);
  try {
    await checkDatabase(url, { embedded: cfg.databaseUrl === undefined });
    const m = await migrationStatus(url);
    if (m.failed.length > 0)
      return {
        name,
        status: 'fail',
        detail: `${where}: migration ${m.failed.join(', ')} failed part-way`,
        hint: 'run `solstice db migrate`, which explains how to resolve it',
      };
    if (m.pending.length > 0)
      return {
        name,
        status: 'fail',
        detail: `${where}: ${m.pending.length} migration(s) pending (${m.pending.join(', ')})`,
        hint: `run \`solstice db migrate\` (or start the services with ${SETTINGS.migrateOnBoot.flag})`,
      };
    if (m.unknown.length > 0)
      return {
        name,
        status: 'warn',
        detail: `${where}: migrations ${m.unknown.join(', ')} are applied but unknown to this build`,
        hint: 'the database was migrated by a newer Solstice; upgrade this installation',
      };
    return { name, status: 'ok', detail: `${where}, ${m.applied.length} migrations applied, none pending` };
  } catch (err) {
    return failure(name, err);
  }
}

/** The installation's id, which names its machines and (by default) its broker queues. */
async function checkInstallation(cfg: Config, id: Promise<string>): Promise<CheckResult> {
  const name = 'installation';
  try {
    const installationId = await id;
    const names = cfg.amqpPrefix
      ? `broker names ${cfg.amqpPrefix}.* (${SETTINGS.amqpPrefix.env})`
      : `broker names solstice.${installationId}.*`;
    return { name, status: 'ok', detail: `id ${installationId}; machines are tagged with it, ${names}` };
  } catch (err) {
    if (err instanceof InstallationUnknownError) return failure(name, err);
    return { name, status: 'skip', detail: 'the database cannot be read (see PostgreSQL)' };
  }
}

async function checkRabbitMq(cfg: Config, opts: CheckOptions, id: Promise<string>): Promise<CheckResult> {
  const name = 'RabbitMQ';
  if (cfg.amqpUrl === AMQP_OFF)
    return {
      name,
      status: 'skip',
      detail: `off (${SETTINGS.amqpUrl.env}=${AMQP_OFF}): no bridge or webhooks; \`solstice enqueue\` starts runs directly`,
    };
  const where = redactAmqpUrl(cfg.amqpUrl);
  let model: amqp.ChannelModel;
  try {
    model = await amqp.connect(cfg.amqpUrl, { timeout: 3000 });
  } catch (err) {
    const e = amqpUnavailable(cfg.amqpUrl, err);
    if (opts.amqpConfigured) return failure(name, e);
    return {
      name,
      status: 'warn',
      detail: `${e.message} (${SETTINGS.amqpUrl.env} unset, so it is optional)`,
      hint: 'without it there are no webhooks or bridge; `solstice enqueue` starts runs directly',
    };
  }
  model.on('error', () => undefined);
  try {
    // Passive: a queue that does not exist yet is declared by the first bridge or webhook server.
    const ch = await model.createChannel();
    ch.on('error', () => undefined);
    const topology: Topology | undefined = await installationTopology(cfg, () => id).catch(() => undefined);
    const depth = !topology
      ? 'queue names unknown (the installation id cannot be read)'
      : await ch.checkQueue(topology.queue).then(
          (q) => `${q.messageCount} waiting in ${topology.queue}`,
          () => `${topology.queue} not declared yet (the bridge declares it)`,
        );
    return { name, status: 'ok', detail: `${where}, ${depth}` };
  } catch (err) {
    return failure(name, err);
  } finally {
    await model.close().catch(() => undefined);
  }
}

async function checkBlobStore(cfg: Config): Promise<CheckResult> {
  const name = 'blob store';
  const blobs = createBlobStore(cfg);
  const key = `doctor/probe-${randomUUID()}`;
  const body = Buffer.from(`solstice doctor ${new Date().toISOString()}\n`);
  try {
    await blobs.check();
    await blobs.put(key, body);
    const back = await blobs.get(key);
    await blobs.delete(key);
    if (!back || !back.equals(body))
      return {
        name,
        status: 'fail',
        detail: `${blobs.describe()}: a probe object read back ${back ? 'different bytes' : 'nothing'}`,
        hint: 'the store does not keep what it is given; check its consistency settings or free space',
      };
    if (await blobs.get(key))
      return {
        name,
        status: 'warn',
        detail: `${blobs.describe()}: a deleted probe object (${key}) can still be read`,
        hint: 'deletes do not take effect; expired logs and artifacts will not be removed',
      };
    return { name, status: 'ok', detail: `${blobs.describe()}, write/read/delete of a probe object` };
  } catch (err) {
    const r = failure(name, err);
    return { ...r, detail: `${blobs.describe()}: ${r.detail}` };
  } finally {
    await blobs.close();
  }
}

function findProgram(program: string, searchPath: string): string | undefined {
  for (const dir of searchPath.split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, program);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** KVM is usable when this user can open the device read-write (not merely see it). */
function kvmUsable(device: string): { ok: boolean; why: string } {
  try {
    fs.closeSync(fs.openSync(device, 'r+'));
    return { ok: true, why: '' };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return {
      ok: false,
      why: code === 'ENOENT' ? `${device} does not exist` : `${device} cannot be opened (${code})`,
    };
  }
}

async function checkQemu(cfg: Config, opts: CheckOptions): Promise<CheckResult> {
  const name = 'QEMU';
  const searchPath = opts.path ?? process.env.PATH ?? '';
  const programs = ['qemu-system-x86_64', 'qemu-img'];
  const found = programs.map((p) => [p, findProgram(p, searchPath)] as const);
  const missing = found.filter(([, at]) => !at).map(([p]) => p);
  // VMs are wanted once an image map is configured; without one the local provider runs jobs.
  const needed = cfg.imageMap !== undefined;
  if (missing.length > 0)
    return {
      name,
      status: needed ? 'fail' : 'warn',
      detail: `${missing.join(' and ')} not found on PATH${needed ? '' : ' (only the local provider can run jobs)'}`,
      hint: 'install them: apt-get install qemu-system-x86 qemu-utils',
    };
  let version: string;
  try {
    const { stdout } = await run(found[0][1] as string, ['--version'], { timeout: 10_000 });
    version = /version (\S+)/.exec(stdout)?.[1] ?? '';
  } catch (err) {
    return {
      name,
      status: 'fail',
      detail: `qemu-system-x86_64 --version failed: ${describeError(err)}`,
      hint: 'reinstall QEMU (apt-get install --reinstall qemu-system-x86)',
    };
  }
  const kvm = kvmUsable(opts.kvmDevice ?? '/dev/kvm');
  const what = `qemu-system-x86_64 ${version}`.trim();
  if (kvm.ok) return { name, status: 'ok', detail: `${what} and qemu-img, KVM usable` };
  return {
    name,
    status: 'warn',
    detail: `${what} and qemu-img, but ${kvm.why}: VMs fall back to TCG emulation (many times slower)`,
    hint: 'enable virtualization (VT-x/AMD-V, nested for a VM host), load kvm_intel/kvm_amd, and add this user to the kvm group',
  };
}

/** The image files an image map names, from the map as the QEMU provider loads it (validated). */
function imageFiles(file: string): { image: string; files: string[]; source?: string }[] {
  return Object.values(loadImageMap(file).images).map((img) => ({
    image: img.name,
    files: [img.base, img.kernel, img.initrd],
    source: img.source,
  }));
}

async function checkImages(cfg: Config): Promise<CheckResult> {
  const name = 'images';
  if (cfg.imageMap === undefined)
    return {
      name,
      status: 'skip',
      detail: `${SETTINGS.imageMap.env} is unset: no VM images to check (jobs use the local provider)`,
    };
  let images: ReturnType<typeof imageFiles>;
  try {
    images = imageFiles(cfg.imageMap);
  } catch (err) {
    return {
      name,
      status: 'fail',
      detail: `the image map ${cfg.imageMap} cannot be used: ${describeError(err)}`,
      hint: `fix the file or point ${SETTINGS.imageMap.env} at the right one (format: docs/qemu.md)`,
    };
  }
  const problems: string[] = [];
  let fetchable = 0;
  for (const img of images) {
    const missing = img.files.filter((f) => !fs.existsSync(f));
    if (missing.length === 0) continue;
    // A base image with a `source` is downloaded on first use; kernel and initrd are not.
    const onlyBase = missing.length === 1 && missing[0] === img.files[0];
    if (onlyBase && img.source) fetchable += 1;
    else problems.push(`${img.image}: missing ${missing.join(', ')}`);
  }
  if (problems.length > 0)
    return {
      name,
      status: 'fail',
      detail: problems.join('; '),
      hint: `put the files in place or correct their paths in ${cfg.imageMap} (relative paths are relative to it)`,
    };
  const names = images.map((i) => i.image).join(', ');
  if (fetchable > 0)
    return {
      name,
      status: 'warn',
      detail: `${images.length} image(s) (${names}); ${fetchable} base image(s) not downloaded yet`,
      hint: 'they are fetched from their `source` when a job first needs them; the first such job waits for it',
    };
  return { name, status: 'ok', detail: `${images.length} image(s) present (${names})` };
}

/**
 * The Forgejo/Gitea token, by asking the forge what it may do: a read-only token would pass
 * every other check and then get 403 on every commit status.
 */
async function checkForgeToken(cfg: Config): Promise<CheckResult> {
  const name = 'forge token';
  if (!cfg.forgejoToken)
    return {
      name,
      status: 'skip',
      detail: `${SETTINGS.forgejoToken.env} is unset: no statuses on Forgejo/Gitea`,
    };
  if (!cfg.forgejoApiUrl)
    return {
      name,
      status: 'skip',
      detail: `${SETTINGS.forgejoApiUrl.env} is unset, so doctor does not know which forge to ask about the token`,
      hint: `set ${SETTINGS.forgejoApiUrl.env}=https://<forge>/api/v1 to have the token checked`,
    };
  try {
    const v = await checkForgejoToken(cfg.forgejoApiUrl, cfg.forgejoToken);
    return v.ok
      ? { name, status: 'ok', detail: v.detail }
      : { name, status: 'fail', detail: v.detail, hint: v.hint };
  } catch (err) {
    return failure(name, err);
  }
}

/** Runs every check at once and returns the results in a fixed order. */
export async function runDependencyChecks(cfg: Config, opts: CheckOptions): Promise<CheckResult[]> {
  const installationId = installationIdOf(cfg);
  installationId.catch(() => undefined); // each check reports it in its own way
  const results = await Promise.all([
    checkTemporal(cfg),
    checkPostgres(cfg),
    checkInstallation(cfg, installationId),
    checkRabbitMq(cfg, opts, installationId),
    checkBlobStore(cfg),
    checkLogService(cfg),
    checkRunnerUrl(cfg),
    checkQemu(cfg, opts),
    checkImages(cfg),
    checkForgeToken(cfg),
  ]);
  return results.flat();
}
