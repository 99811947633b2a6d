/**
 * Prepares a Temporal namespace for Solstice on a cluster that has nothing yet (a fresh cluster
 * has no `default` namespace and no custom search attributes; the dev server gets both from its
 * flags), and reports how far a namespace is from that, for `solstice doctor`. Both go through the
 * frontend's workflow and operator services, as the worker does, so TLS settings apply alike.
 */
import { status as grpcStatus } from '@grpc/grpc-js';
import { isGrpcServiceError, type Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { SEARCH_ATTRIBUTES } from '../model/search-attributes';
import { SolsticeError } from '../platform/errors';

type Services = Pick<Connection, 'workflowService' | 'operatorService'>;

/** temporal.api.enums.v1.IndexedValueType (@temporalio/proto is no direct dependency). */
const INDEXED_VALUE_TYPE: Record<string, number> = {
  TEXT: 1,
  KEYWORD: 2,
  INT: 3,
  DOUBLE: 4,
  BOOL: 5,
  DATETIME: 6,
  KEYWORD_LIST: 7,
};
const TYPE_NAME = Object.fromEntries(Object.entries(INDEXED_VALUE_TYPE).map(([n, v]) => [v, n]));

/** Each Solstice attribute with the indexed type the server must hold it as. */
const WANTED = Object.values(SEARCH_ATTRIBUTES).map((k) => ({
  name: k.name,
  type: k.type as string,
  code: INDEXED_VALUE_TYPE[k.type],
}));

/** Temporal CLI's default for `operator namespace create`; Temporal's minimum is a day. */
export const DEFAULT_NAMESPACE_RETENTION_MS = 3 * 24 * 60 * 60_000;

/** How long a namespace just created may take to show on every frontend (its namespace cache refresh). */
const NAMESPACE_VISIBLE_TIMEOUT_MS = 30_000;

/** The setup command's advice, named once so doctor and errors print the same. */
export function setupCommand(namespace: string): string {
  return namespace === 'default'
    ? '`solstice temporal setup`'
    : `\`solstice temporal setup --temporal-namespace ${namespace}\``;
}

/** A Solstice attribute is registered under another type; Temporal cannot change a type in place. */
export class SearchAttributeTypeError extends SolsticeError {
  constructor(
    readonly namespace: string,
    readonly wrong: { name: string; want: string; have: string }[],
  ) {
    super(
      `namespace "${namespace}" has ${wrong.map((w) => `${w.name} as ${w.have}`).join(', ')}; Solstice needs ${wrong
        .map((w) => w.want)
        .join(', ')}`,
      `remove them (\`temporal operator search-attribute remove --namespace ${namespace} ${wrong
        .map((w) => `--name ${w.name}`)
        .join(' ')}\`), then run ${setupCommand(namespace)} again`,
    );
  }
}

export interface NamespaceState {
  exists: boolean;
  /** Solstice attributes the namespace lacks. */
  missing: string[];
  /** Solstice attributes registered under another type. */
  wrongType: { name: string; want: string; have: string }[];
}

function isCode(err: unknown, code: grpcStatus): boolean {
  return isGrpcServiceError(err) && err.code === code;
}

/** What the namespace holds of what Solstice needs. Read-only. */
export async function inspectNamespace(services: Services, namespace: string): Promise<NamespaceState> {
  try {
    await services.workflowService.describeNamespace({ namespace });
  } catch (err) {
    if (isCode(err, grpcStatus.NOT_FOUND))
      return { exists: false, missing: WANTED.map((w) => w.name), wrongType: [] };
    throw err;
  }
  const r = await services.operatorService.listSearchAttributes({ namespace });
  const have = r.customAttributes ?? {};
  const state: NamespaceState = { exists: true, missing: [], wrongType: [] };
  for (const w of WANTED) {
    const code = have[w.name];
    if (code === undefined || code === null) state.missing.push(w.name);
    else if (code !== w.code)
      state.wrongType.push({ name: w.name, want: w.type, have: TYPE_NAME[code] ?? String(code) });
  }
  return state;
}

export interface SetupResult {
  namespaceCreated: boolean;
  retentionMs?: number;
  attributesAdded: string[];
}

/**
 * Runs `step` until the namespace is visible to every frontend service it uses: right after its
 * creation the workflow service may know it before the operator service's namespace cache does
 * (NOT_FOUND), and `step` answers undefined while describeNamespace does not find it yet.
 */
async function whileNamespaceNew<T>(namespace: string, step: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + NAMESPACE_VISIBLE_TIMEOUT_MS;
  for (;;) {
    try {
      const done = await step();
      if (done !== undefined) return done;
    } catch (err) {
      if (!isCode(err, grpcStatus.NOT_FOUND)) throw err;
    }
    if (Date.now() > deadline)
      throw new SolsticeError(
        `namespace "${namespace}" was created but Temporal did not serve it within ${NAMESPACE_VISIBLE_TIMEOUT_MS / 1000}s`,
        `run ${setupCommand(namespace)} again; if it persists, check the frontend's and history's logs`,
      );
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/**
 * Creates the namespace when missing and registers the search attributes it lacks. Idempotent:
 * a second run (or another process doing the same at once) changes nothing. An attribute held
 * under the wrong type is an error, since only its removal can fix it.
 */
export async function setupNamespace(
  services: Services,
  opts: { namespace: string; retentionMs?: number },
): Promise<SetupResult> {
  const { namespace } = opts;
  const result: SetupResult = { namespaceCreated: false, attributesAdded: [] };
  const state = await inspectNamespace(services, namespace);
  if (!state.exists) {
    const retentionMs = opts.retentionMs ?? DEFAULT_NAMESPACE_RETENTION_MS;
    try {
      await services.workflowService.registerNamespace({
        namespace,
        workflowExecutionRetentionPeriod: msToTs(retentionMs),
        description: 'Solstice CI',
      });
      result.namespaceCreated = true;
      result.retentionMs = retentionMs;
    } catch (err) {
      if (!isCode(err, grpcStatus.ALREADY_EXISTS)) throw err;
    }
  }
  const register = async (): Promise<string[] | undefined> => {
    const now = await inspectNamespace(services, namespace);
    if (!now.exists) return undefined;
    if (now.wrongType.length > 0) throw new SearchAttributeTypeError(namespace, now.wrongType);
    if (now.missing.length === 0) return [];
    const searchAttributes = Object.fromEntries(
      WANTED.filter((w) => now.missing.includes(w.name)).map((w) => [w.name, w.code]),
    );
    try {
      await services.operatorService.addSearchAttributes({ namespace, searchAttributes });
    } catch (err) {
      // Another process registered them meanwhile; the check below says whether all is well.
      if (!isCode(err, grpcStatus.ALREADY_EXISTS)) throw err;
    }
    const after = await inspectNamespace(services, namespace);
    if (after.wrongType.length > 0) throw new SearchAttributeTypeError(namespace, after.wrongType);
    return now.missing;
  };
  result.attributesAdded = await whileNamespaceNew(namespace, register);
  return result;
}
