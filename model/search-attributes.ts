/**
 * Solstice's custom search attributes: the names the Temporal Web UI filters runs by. Pure
 * definitions, so workflow code (which upserts them) and the processes that register them with
 * the server (ingress/search-attributes.ts) share one list.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Keyword attributes; registered at startup (ingress/search-attributes.ts), set at start, state upserted. */
export const SEARCH_ATTRIBUTES = {
  repo: defineSearchAttributeKey('SolsticeRepo', SearchAttributeType.KEYWORD),
  branch: defineSearchAttributeKey('SolsticeBranch', SearchAttributeType.KEYWORD),
  commit: defineSearchAttributeKey('SolsticeCommit', SearchAttributeType.KEYWORD),
  job: defineSearchAttributeKey('SolsticeJob', SearchAttributeType.KEYWORD),
  label: defineSearchAttributeKey('SolsticeLabel', SearchAttributeType.KEYWORD),
  state: defineSearchAttributeKey('SolsticeState', SearchAttributeType.KEYWORD),
} as const;
