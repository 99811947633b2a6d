/**
 * Registers Solstice's custom search attributes (workflows/web-ui.ts) with the Temporal
 * server, and starts workflows with them where the server knows them. Servers that refuse
 * registration through the operator API (Temporal Cloud) get them with `tcld`; until then runs
 * start without them rather than not at all.
 */
import { status as grpcStatus } from '@grpc/grpc-js';
import { isGrpcServiceError, type Connection } from '@temporalio/client';
import type { SearchAttributePair } from '@temporalio/common';
import type { Logger } from '../platform/logger';
import { SEARCH_ATTRIBUTES } from '../model/search-attributes';

type OperatorService = Connection['operatorService'];

/** temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD (@temporalio/proto is no direct dependency). */
const KEYWORD = 2;

export const SEARCH_ATTRIBUTE_NAMES: readonly string[] = Object.values(SEARCH_ATTRIBUTES).map((k) => k.name);

/** `--search-attribute` flags for `temporal server start-dev`. */
export function devServerSearchAttributeFlags(): string[] {
  return SEARCH_ATTRIBUTE_NAMES.flatMap((name) => ['--search-attribute', `${name}=Keyword`]);
}

const HOW_TO_REGISTER =
  'register them once with `solstice temporal setup --temporal-namespace <ns>` (or `temporal operator search-attribute create --namespace <ns> ' +
  SEARCH_ATTRIBUTE_NAMES.map((n) => `--name ${n} --type Keyword`).join(' ') +
  '`; Temporal Cloud: `tcld namespace search-attributes add`)';

/**
 * Adds whichever of our attributes the namespace lacks. Idempotent; another process adding them
 * at the same time is fine. Returns false (after a warning) when the server refuses.
 */
export async function ensureSearchAttributes(
  operator: OperatorService,
  namespace: string,
  log: Logger,
): Promise<boolean> {
  try {
    const existing = await operator.listSearchAttributes({ namespace });
    const known = new Set(Object.keys(existing.customAttributes ?? {}));
    const missing = SEARCH_ATTRIBUTE_NAMES.filter((n) => !known.has(n));
    if (missing.length === 0) return true;
    await operator.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((n) => [n, KEYWORD])),
    });
    log.info({ namespace, added: missing }, 'registered search attributes');
    return true;
  } catch (err) {
    if (isGrpcServiceError(err) && err.code === grpcStatus.ALREADY_EXISTS) return true;
    log.warn(
      { namespace, err: err instanceof Error ? err.message : String(err) },
      `could not register the Solstice search attributes; runs start without them: ${HOW_TO_REGISTER}`,
    );
    return false;
  }
}

function isUnknownSearchAttribute(err: unknown): boolean {
  // The client wraps the server's gRPC error in its own ServiceError.
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (isGrpcServiceError(e))
      return e.code === grpcStatus.INVALID_ARGUMENT && /search attribute/i.test(e.details ?? e.message);
  }
  return false;
}

let warnedUnregistered = false;

/**
 * Runs `start` with our search attributes; when the server does not know them, once more
 * without (the workflows then skip their state upserts), so a missing registration costs
 * findability, not runs.
 */
export async function startWithSearchAttributes<T>(
  attributes: SearchAttributePair[],
  start: (typedSearchAttributes: SearchAttributePair[] | undefined) => Promise<T>,
  log?: Pick<Logger, 'warn'>,
): Promise<T> {
  try {
    return await start(attributes);
  } catch (err) {
    if (!isUnknownSearchAttribute(err)) throw err;
    if (!warnedUnregistered) {
      warnedUnregistered = true;
      log?.warn(
        { err: err instanceof Error ? err.message : String(err) },
        `the Temporal namespace lacks the Solstice search attributes; ${HOW_TO_REGISTER}`,
      );
    }
    return start(undefined);
  }
}
