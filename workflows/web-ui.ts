/**
 * What the Temporal Web UI shows about a run: the custom search attributes that make runs
 * findable, and the static summary and details of a pipeline or job. Pure string work, so the
 * starters (client side) and PipelineWorkflow (for its child jobs) compute the same texts.
 */
import type { SearchAttributePair } from '@temporalio/common';
import { branchOf } from '../model/domain';
import { SEARCH_ATTRIBUTES } from '../model/search-attributes';
import { commitUrl, repoAtCommit, repoDisplayName, repoUrlWithoutCredentials } from '../model/repo-url';

export interface RunFacts {
  repoUrl: string;
  commitSha: string;
  ref?: string;
  /** The job's name in the workflow file; absent for a pipeline. */
  job?: string;
  label?: string;
  state: string;
}

export function searchAttributesFor(f: RunFacts): SearchAttributePair[] {
  const branch = branchOf(f.ref);
  return [
    { key: SEARCH_ATTRIBUTES.repo, value: repoDisplayName(f.repoUrl) },
    ...(branch ? [{ key: SEARCH_ATTRIBUTES.branch, value: branch }] : []),
    { key: SEARCH_ATTRIBUTES.commit, value: f.commitSha },
    ...(f.job ? [{ key: SEARCH_ATTRIBUTES.job, value: f.job }] : []),
    ...(f.label ? [{ key: SEARCH_ATTRIBUTES.label, value: f.label }] : []),
    { key: SEARCH_ATTRIBUTES.state, value: f.state },
  ];
}

/** One line: `owner/name@<sha12> · <job>` (or `· pipeline`). */
export function runSummary(f: Pick<RunFacts, 'repoUrl' | 'commitSha' | 'job'>): string {
  return `${repoAtCommit(f.repoUrl, f.commitSha)} · ${f.job ?? 'pipeline'}`;
}

/** The job page people open (`SOLSTICE_PUBLIC_URL`), the same link the forge statuses carry. */
export function jobPageUrl(publicUrl: string | undefined, jobId: string): string | undefined {
  return publicUrl ? `${publicUrl.replace(/\/+$/, '')}/jobs/${jobId}` : undefined;
}

/** Markdown for the run's static details: what ran where, with links to the job page and the commit. */
export function runDetails(d: {
  repoUrl: string;
  commitSha: string;
  ref?: string;
  label?: string;
  jobId?: string;
  pipelineId?: string;
  event?: string;
  publicUrl?: string;
}): string {
  const commit = commitUrl(d.repoUrl, d.commitSha);
  const page = d.jobId ? jobPageUrl(d.publicUrl, d.jobId) : undefined;
  return [
    // Everyone who can open the Web UI reads this: a token in the clone URL must not show.
    `**Repository** ${repoUrlWithoutCredentials(d.repoUrl)}`,
    `**Commit** ${commit ? `[${d.commitSha}](${commit})` : d.commitSha}${d.ref ? ` (${d.ref})` : ''}`,
    ...(d.event ? [`**Event** ${d.event}`] : []),
    ...(d.label ? [`**Runs on** ${d.label}`] : []),
    ...(d.pipelineId ? [`**Pipeline** ${d.pipelineId}`] : []),
    ...(d.jobId ? [`**Job** ${page ? `[${d.jobId}](${page})` : d.jobId}`] : []),
  ].join('\n\n');
}
