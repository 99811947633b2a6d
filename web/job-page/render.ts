/**
 * The job page's HTML, rendered on the server from what the database holds. Every value that
 * came from a job (log text, step and file names, messages) goes through `escapeHtml`. The page
 * shows a bounded window of the log (the tail, or the lines before `?before=`), never the whole
 * log, so a 100 MB log renders as fast as a small one; the raw log is a link.
 */
import type { ArtifactRecord } from '../../storage/artifact-store';
import { formatSize } from '../../platform/config';
import type {
  JobRecord,
  JobStepRecord,
  LogLineRecord,
  StepOutcome,
  StepTable,
} from '../../storage/job-store';
import { attemptsOf } from '../../storage/step-table';
import { annotationOf, groupMarker, type Annotation } from './workflow-commands';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// Colour and cursor escape sequences: noise in a browser, and the text stays readable without them.
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[A-Za-z]/g;

/** The runner's SYSTEM line that opens a step: `step 2/5 "test" started`. */
export const STEP_START = /^step (\d+)\/\d+ ".*" (started|skipped)/;

function lineHtml(l: LogLineRecord): string {
  const step = l.stream === 'system' ? STEP_START.exec(l.text) : null;
  const cls = `ln s-${escapeHtml(l.stream)}${step ? ' step' : ''}`;
  const anchor = step ? ` data-step="${step[1]}"` : '';
  return `<div class="${cls}" id="L${l.seq}"${anchor}><a class="n" href="#L${l.seq}">${l.seq}</a><span class="t">${escapeHtml(l.text.replace(ANSI, ''))}</span></div>`;
}

function duration(ms: number | null): string {
  if (ms === null) return '';
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(ms / 60_000);
  return `${m}m${Math.round((ms % 60_000) / 1000)}s`;
}

/** A step as a table row shows it: plain text (the server escapes it, the page uses textContent). */
export interface StepRow {
  kind: 'step';
  index: number;
  name: string;
  /** The outcome as stored (the row's class), and as shown. */
  state: StepOutcome;
  outcome: string;
  exitCode: string;
  duration: string;
  /** Where the step's log starts, when it wrote any. */
  href?: string;
}

/**
 * A row of the step table: a step, or (for a job that ran on more than one machine) an attempt's
 * heading, or why that attempt's machine was given up, linked to the log line that says so.
 */
export type StepTableRow = StepRow | { kind: 'attempt' | 'lost'; text: string; href?: string };

/** Where line `seq` is shown, in the window that starts with it. */
const lineHref = (jobId: string, seq: number, window: number): string =>
  `/jobs/${jobId}?before=${seq + window}#L${seq}`;

function stepRow(jobId: string, st: JobStepRecord, window: number): StepRow {
  return {
    kind: 'step',
    index: st.index,
    name: st.name,
    state: st.outcome,
    outcome: `${st.outcome}${st.continueOnError && st.outcome === 'failure' ? ' (continue-on-error)' : ''}`,
    exitCode: st.exitCode === null ? '' : String(st.exitCode),
    duration: duration(st.durationMs),
    ...(st.firstSeq !== null ? { href: lineHref(jobId, st.firstSeq, window) } : {}),
  };
}

export function stepRows(jobId: string, table: StepTable, window: number): StepTableRow[] {
  const attempts = attemptsOf(table);
  if (attempts.length === 1 && !attempts[0].lost)
    return attempts[0].steps.map((st) => stepRow(jobId, st, window));
  return attempts.flatMap((a): StepTableRow[] => [
    { kind: 'attempt', text: `attempt ${a.attempt}${a.steps.length === 0 ? ' (no steps reported)' : ''}` },
    ...a.steps.map((st) => stepRow(jobId, st, window)),
    ...(a.lost
      ? [{ kind: 'lost' as const, text: a.lost.message, href: lineHref(jobId, a.lost.logSeq, window) }]
      : []),
  ]);
}

export interface JobPageView {
  job: JobRecord;
  steps: StepTable;
  artifacts: ArtifactRecord[];
  /** All of the job's artifacts, when more exist than `artifacts` holds. */
  artifactCount?: number;
  lines: LogLineRecord[];
  /** Highest stored seq when the page was rendered. */
  lastSeq: number;
  /** Lines per window. */
  window: number;
  /** Whether the page follows new lines (the tail of a running job). */
  live: boolean;
  /** The job's name in its pipeline (`test[node=20]`), when it belongs to one. */
  name?: string;
  /** The pipeline it belongs to: id, `app#12` and state. */
  pipeline?: { id: string; label: string; state: string };
}

/** `log expired on 2026-12-01 12:00 UTC`: what retention left of a log or the artifacts. */
function expiredNote(id: string, what: string, at: Date): string {
  const when = `${at.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  return `<p class="expired" id="${id}">${what} expired on <time datetime="${at.toISOString()}">${when}</time></p>`;
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
header{padding:12px 20px;background:#fff;border-bottom:1px solid #ddd}
h1{font-size:18px;margin:0 0 4px}
main{padding:12px 20px}
.state{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;background:#888}
.state-success{background:#1a7f37}.state-failure,.state-error{background:#cf222e}
.state-running,.state-provisioning,.state-queued{background:#9a6700}
table{border-collapse:collapse;margin:8px 0}caption{text-align:left;font-weight:bold;font-size:1.17em;padding:8px 0}
.step-running td{background:#fff8c5}.step-failure td{color:#cf222e}.step-interrupted td{color:#8250df}tr.attempt td{font-weight:bold;padding-top:8px}tr.lost td,tr.lost a{color:#8250df}td,th{padding:2px 10px;text-align:left;border-bottom:1px solid #eee}
#log{font:12px/1.45 ui-monospace,monospace;background:#111;color:#ddd;padding:8px 0;white-space:pre-wrap;word-break:break-all}
.ln{padding:0 10px 0 calc(10px + 6em);text-indent:-6em}.ln .n{display:inline-block;width:6em;text-indent:0;color:#666;text-decoration:none;user-select:none}
.s-stderr .t{color:#f0c674}.s-system .t,.s-console .t{color:#8ab4f8}
.step{margin-top:10px;padding-top:4px;border-top:1px solid #444;font-weight:bold}
details.group>summary{list-style:none;cursor:pointer}details.group>summary .t::before{content:'▸ '}details.group[open]>summary .t::before{content:'▾ '}
details.fold>summary{list-style:none;cursor:pointer}details.fold>summary .t::before{content:'▸ '}details.fold[open]>summary .t::before{content:'▾ '}
details.fold.failed>summary .t{color:#ff7b72}
.sub{color:#555;font-size:13px}
.ann-error a{color:#cf222e}.ann-warning a{color:#9a6700}
.more{padding:4px 10px;color:#aaa}.more a{color:#8ab4f8}
:target{background:#333}
`;

/**
 * Follows the log with server-sent events from the last line shown; new lines are built with
 * textContent, so nothing from the log is ever parsed as HTML. At the end the page reloads to
 * show the final state, steps and artifacts.
 */
const SCRIPT = `
(() => {
  const log = document.getElementById('log');
  const max = Number(log.dataset.window) * 5;
  const es = new EventSource(location.pathname.replace(/\\/$/, '') + '/events?after=' + log.dataset.after);
  const stepRe = ${STEP_START.toString()};
  // A running job's page opens at its tail, where new lines arrive, unless a line was linked.
  if (!location.hash) window.scrollTo(0, document.body.scrollHeight);
  // Lines go into the step they belong to: the fold the page ends with, or a new one.
  let current = log.lastElementChild && log.lastElementChild.matches('details.fold') ? log.lastElementChild : log;
  es.addEventListener('lines', (e) => {
    const atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
    for (const l of JSON.parse(e.data)) {
      const div = document.createElement('div');
      const m = l.stream === 'system' ? stepRe.exec(l.text) : null;
      div.className = 'ln s-' + l.stream + (m ? ' step' : '');
      div.id = 'L' + l.seq;
      const a = document.createElement('a');
      a.className = 'n';
      a.href = '#L' + l.seq;
      a.textContent = String(l.seq);
      const t = document.createElement('span');
      t.className = 't';
      t.textContent = l.text.replace(/\\u001b\\[[0-9;?]*[A-Za-z]/g, '');
      div.append(a, t);
      if (m) {
        const fold = document.createElement('details');
        fold.className = 'fold';
        fold.dataset.step = m[1];
        fold.open = true;
        const summary = document.createElement('summary');
        summary.append(div);
        fold.append(summary);
        log.appendChild(fold);
        current = fold;
      } else current.appendChild(div);
    }
    // A chatty job must not grow the page without bound: the raw log has everything.
    while (log.querySelectorAll('.ln').length > max) log.querySelector('.ln').remove();
    if (atBottom) window.scrollTo(0, document.body.scrollHeight);
  });
  // Steps as the runner reports them: the table is rebuilt from text, like the log lines.
  const steps = document.getElementById('steps');
  es.addEventListener('steps', (e) => {
    const body = steps.tBodies[0];
    body.replaceChildren();
    for (const s of JSON.parse(e.data)) {
      const tr = body.insertRow();
      if (s.kind !== 'step') {
        tr.className = s.kind;
        const td = tr.insertCell();
        td.colSpan = 5;
        const a = document.createElement(s.href ? 'a' : 'span');
        if (s.href) a.href = s.href;
        a.textContent = s.text;
        td.append(a);
        continue;
      }
      tr.className = 'step-' + s.state;
      tr.insertCell().textContent = String(s.index);
      const name = tr.insertCell();
      if (s.href) {
        const a = document.createElement('a');
        a.href = s.href;
        a.textContent = s.name;
        name.append(a);
      } else name.textContent = s.name;
      for (const v of [s.outcome, s.exitCode, s.duration]) tr.insertCell().textContent = v;
    }
    steps.hidden = body.rows.length === 0;
  });
  es.addEventListener('end', () => { es.close(); location.reload(); });
})();
`;

export function renderJobPage(v: JobPageView): string {
  const { job } = v;
  const base = `/jobs/${job.id}`;
  const parts: string[] = [];
  parts.push(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">`,
    `<title>${escapeHtml(`${job.state} · ${v.name ?? `job ${job.id.slice(0, 8)}`}${v.pipeline ? ` · ${v.pipeline.label}` : ''}`)}</title><style>${STYLE}</style></head><body>`,
    `<header><h1>Job <span id="job-name">${escapeHtml(v.name ?? job.id)}</span> <span class="state state-${escapeHtml(job.state)}" id="state">${escapeHtml(job.state)}</span></h1>`,
    v.pipeline
      ? `<div class="sub">pipeline <a id="pipeline" href="/pipelines/${escapeHtml(v.pipeline.id)}">${escapeHtml(v.pipeline.label)}</a> (${escapeHtml(v.pipeline.state)})${v.name ? ` · job ${escapeHtml(job.id)}` : ''}</div>`
      : '',
    `<div>${escapeHtml(job.repoUrl)} @ <code>${escapeHtml(job.commitSha.slice(0, 12))}</code>${job.ref ? ` (${escapeHtml(job.ref)})` : ''}`,
    job.exitCode !== null ? ` · exit code ${job.exitCode}` : '',
    job.startedAt && job.finishedAt
      ? ` · ran ${duration(job.finishedAt.getTime() - job.startedAt.getTime())}`
      : '',
    `</div>`,
    job.message ? `<div class="message">${escapeHtml(job.message)}</div>` : '',
    `</header><main>`,
  );

  // A live page has the table even before the first step, for the events to fill.
  const rows = stepRows(job.id, v.steps, v.window);
  if (rows.length > 0 || v.live) {
    parts.push(
      `<table id="steps"${rows.length === 0 ? ' hidden' : ''}><caption>Steps</caption>`,
      '<thead><tr><th>#</th><th>step</th><th>outcome</th><th>exit code</th><th>duration</th></tr></thead><tbody>',
    );
    for (const st of rows) {
      if (st.kind !== 'step') {
        const text = escapeHtml(st.text);
        parts.push(
          `<tr class="${st.kind}"><td colspan="5">${st.href ? `<a href="${escapeHtml(st.href)}">${text}</a>` : text}</td></tr>`,
        );
        continue;
      }
      const name = escapeHtml(st.name);
      parts.push(
        `<tr class="step-${escapeHtml(st.state)}"><td>${st.index}</td>`,
        `<td>${st.href ? `<a href="${escapeHtml(st.href)}">${name}</a>` : name}</td>`,
        `<td>${escapeHtml(st.outcome)}</td><td>${st.exitCode}</td><td>${st.duration}</td></tr>`,
      );
    }
    parts.push('</tbody></table>');
  }

  if (job.artifactsExpiredAt) {
    parts.push('<h2>Artifacts</h2>', expiredNote('artifacts-expired', 'artifacts', job.artifactsExpiredAt));
  } else if (v.artifacts.length > 0) {
    parts.push('<h2>Artifacts</h2><table id="artifacts"><tr><th>file</th><th>size</th><th>sha256</th></tr>');
    for (const a of v.artifacts) {
      const href = `${base}/artifacts/${a.path.split('/').map(encodeURIComponent).join('/')}`;
      parts.push(
        `<tr><td><a href="${escapeHtml(href)}" download>${escapeHtml(a.path)}</a></td><td>${formatSize(a.size)}</td><td><code>${a.sha256}</code></td></tr>`,
      );
    }
    parts.push('</table>');
    const more = (v.artifactCount ?? v.artifacts.length) - v.artifacts.length;
    if (more > 0) parts.push(`<p class="more">and ${more} more artifacts, not listed</p>`);
  }

  if (job.logExpiredAt) {
    parts.push('<h2>Log</h2>', expiredNote('log-expired', 'log', job.logExpiredAt), '</main></body></html>');
    return parts.join('');
  }
  const first = v.lines[0]?.seq ?? v.lastSeq + 1;
  const shownLast = v.lines[v.lines.length - 1]?.seq ?? v.lastSeq;
  parts.push(
    `<h2>Log</h2><p><a href="${base}/log.txt" id="raw">raw log.txt</a> (${v.lastSeq} lines)${v.live ? ' · following live' : ''}</p>`,
    `<div id="log" data-after="${shownLast}" data-window="${v.window}">`,
  );
  if (first > 1) {
    parts.push(
      `<div class="more">${first - 1} earlier lines not shown: <a href="${base}?before=${first}" id="earlier">load ${Math.min(v.window, first - 1)} earlier</a> or the <a href="${base}/log.txt">raw log</a></div>`,
    );
  }
  const annotations: Annotation[] = [];
  // A retried job's log holds each attempt's steps, split by the lost attempts' reason lines.
  const outcomes = new Map(v.steps.steps.map((st) => [`${st.attempt}:${st.index}`, st.outcome]));
  const lastAttempt = Math.max(
    1,
    ...v.steps.steps.map((st) => st.attempt),
    ...v.steps.lost.map((l) => l.attempt + 1),
  );
  const attemptAt = (seq: number) => v.steps.lost.find((l) => seq <= l.logSeq)?.attempt ?? lastAttempt;
  let open = 0;
  let inStep = false;
  for (const l of v.lines) {
    const step = l.stream === 'system' ? STEP_START.exec(l.text) : null;
    if (step) {
      // Each step is a fold, its start line the summary: open while it runs and when it
      // failed (or was interrupted), so a failed job's page shows what went wrong.
      parts.push('</details>'.repeat(open + (inStep ? 1 : 0)));
      open = 0;
      inStep = true;
      const outcome = outcomes.get(`${attemptAt(l.seq)}:${step[1]}`);
      const failed = outcome === 'failure' || outcome === 'interrupted';
      const unfold = failed || outcome === undefined || outcome === 'running';
      parts.push(
        `<details class="fold${failed ? ' failed' : ''}" data-step="${step[1]}"${unfold ? ' open' : ''}><summary>${lineHtml(l)}</summary>`,
      );
      continue;
    }
    const marker = groupMarker(l);
    const note = annotationOf(l);
    if (note) annotations.push(note);
    if (marker === null && open > 0) {
      parts.push(lineHtml(l), '</details>');
      open--;
    } else if (typeof marker === 'string') {
      // Folded until opened, as on the forges; the group's own line is its summary.
      parts.push(`<details class="group"><summary>${lineHtml(l)}</summary>`);
      open++;
    } else parts.push(lineHtml(l));
  }
  // A group still open (the job runs, or the step never closed it) ends with the window.
  parts.push('</details>'.repeat(open + (inStep ? 1 : 0)));
  if (annotations.length > 0) {
    const logAt = parts.findIndex((p) => p.startsWith('<div id="log"'));
    parts.splice(
      logAt - 1,
      0,
      '<h2>Annotations</h2><ul id="annotations">' +
        annotations
          .map(
            (a) =>
              `<li class="ann-${a.level}"><a href="#L${a.seq}">${a.level}</a>${a.file ? ` ${escapeHtml(a.file)}${a.line ? `:${a.line}` : ''}` : ''}: ${escapeHtml(a.message)}</li>`,
          )
          .join('') +
        '</ul>',
    );
  }
  if (!v.live && shownLast < v.lastSeq) {
    parts.push(
      `<div class="more">${v.lastSeq - shownLast} later lines: <a href="${base}?before=${Math.min(shownLast + v.window + 1, v.lastSeq + 1)}">next ${Math.min(v.window, v.lastSeq - shownLast)}</a> or the <a href="${base}">end</a></div>`,
    );
  }
  parts.push('</div>');
  if (v.live) parts.push(`<script>${SCRIPT}</script>`);
  // A finished page with a failed step opens at it, unless a line was linked.
  else if (parts.some((p) => p.startsWith('<details class="fold failed"')))
    parts.push(
      `<script>if(!location.hash){const f=document.querySelector('details.fold.failed');if(f)f.scrollIntoView();}</script>`,
    );
  parts.push('</main></body></html>');
  return parts.join('');
}

/** A page in the job page's look: what the sign-in and pipeline pages are drawn in. */
export function pageShell(title: string, body: string, head = ''): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${escapeHtml(title)}</title><style>${STYLE}</style>${head}</head><body>${body}</body></html>`;
}

export function renderNotFound(message: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>not found</title></head><body><p>${escapeHtml(message)}</p></body></html>`;
}
