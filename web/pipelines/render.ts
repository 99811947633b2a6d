/**
 * The pipeline pages' HTML, rendered on the server: the list of pipelines (overall or one
 * repository's, filterable), a pipeline with its jobs drawn as a graph, and the status badge.
 * Values from runs go through `escapeHtml`; forms carry the session's CSRF token.
 */
import type { PipelineJobRecord, PipelineRecord } from '../../storage/pipeline-store';
import { escapeHtml, pageShell } from '../job-page/render';

const COLOURS: Record<string, { fill: string; text: string }> = {
  success: { fill: '#1a7f37', text: '#fff' },
  failure: { fill: '#cf222e', text: '#fff' },
  error: { fill: '#cf222e', text: '#fff' },
  running: { fill: '#9a6700', text: '#fff' },
  waiting: { fill: '#eaeef2', text: '#1d1d1f' },
  cancelled: { fill: '#6e7781', text: '#fff' },
  skipped: { fill: '#f6f8fa', text: '#57606a' },
};
const colour = (state: string) => COLOURS[state] ?? { fill: '#888', text: '#fff' };

/** Who is looking, for the header: signed in as, or a sign-in link. */
export interface Viewer {
  login?: string;
  csrf?: string;
  /** Where sign-in sends the user back to. */
  here: string;
  signInAvailable: boolean;
}

export function viewerBar(v: Viewer): string {
  if (v.login)
    return `<div class="viewer">signed in as <strong>${escapeHtml(v.login)}</strong> <form method="post" action="/logout" class="inline"><input type="hidden" name="_csrf" value="${escapeHtml(v.csrf ?? '')}"><button type="submit">Sign out</button></form></div>`;
  return v.signInAvailable
    ? `<div class="viewer"><a href="/login?next=${encodeURIComponent(v.here)}">Sign in</a></div>`
    : '';
}

const EXTRA_STYLE = `<style>
.viewer{float:right}.inline{display:inline}nav.filters form{display:flex;gap:8px;align-items:end;flex-wrap:wrap}
nav.filters label{display:flex;flex-direction:column;font-size:12px}
.graph{overflow-x:auto;background:#fff;border:1px solid #ddd;margin:8px 0}
.actions form{display:inline;margin-right:8px}
</style>`;

function ago(d: Date): string {
  return `<time datetime="${d.toISOString()}">${d.toISOString().slice(0, 16).replace('T', ' ')} UTC</time>`;
}

const branchOf = (ref: string | null) => (ref ?? '').replace(/^refs\/heads\//, '');

export interface PipelineListView {
  title: string;
  pipelines: PipelineRecord[];
  labels: Map<string, string>;
  filters: { repo?: string; branch?: string; state?: string };
  /** Whether the repository filter is fixed (a repository's own list). */
  repoFixed: boolean;
  /** The link to older pipelines, when there are more. */
  olderHref?: string;
  viewer: Viewer;
}

export function renderPipelineList(v: PipelineListView): string {
  const f = v.filters;
  const rows = v.pipelines
    .map(
      (p) =>
        `<tr class="step-${escapeHtml(p.state)}"><td><a href="/pipelines/${escapeHtml(p.id)}">${escapeHtml(v.labels.get(p.id) ?? p.id)}</a></td>` +
        `<td><span class="state state-${escapeHtml(p.state)}">${escapeHtml(p.state)}</span></td>` +
        `<td>${escapeHtml(branchOf(p.ref))}</td><td><code>${escapeHtml(p.commitSha.slice(0, 12))}</code></td>` +
        `<td>${escapeHtml(p.event)}</td><td>${ago(p.createdAt)}</td></tr>`,
    )
    .join('');
  const input = (name: string, label: string, value?: string) =>
    `<label>${label}<input name="${name}" value="${escapeHtml(value ?? '')}"></label>`;
  const states = ['', 'running', 'success', 'failure', 'error', 'cancelled']
    .map((s) => `<option value="${s}"${f.state === s ? ' selected' : ''}>${s || 'any'}</option>`)
    .join('');
  const filters = `<nav class="filters" aria-label="filters"><form method="get">${v.repoFixed ? '' : input('repo', 'repository', f.repo)}${input('branch', 'branch', f.branch)}<label>state<select name="state">${states}</select></label><button type="submit">Filter</button></form></nav>`;
  const table = v.pipelines.length
    ? `<table id="pipelines"><caption>Pipelines</caption><thead><tr><th>pipeline</th><th>state</th><th>branch</th><th>commit</th><th>event</th><th>started</th></tr></thead><tbody>${rows}</tbody></table>`
    : '<p id="no-pipelines">No pipelines match.</p>';
  const older = v.olderHref
    ? `<p><a id="older" href="${escapeHtml(v.olderHref)}">Older pipelines</a></p>`
    : '';
  return pageShell(
    v.title,
    `<header>${viewerBar(v.viewer)}<h1>${escapeHtml(v.title)}</h1></header><main>${filters}${table}${older}</main>`,
    EXTRA_STYLE,
  );
}

const BOX_W = 190;
const BOX_H = 40;
const GAP_X = 70;
const GAP_Y = 12;
const GROUP_PAD = 8;
const GROUP_HEAD = 20;

/** `test[node=20]` → `test`: the cells of a matrix share the job id they came from. */
export const baseName = (name: string): string => name.replace(/\[.*\]$/, '');

interface Group {
  base: string;
  cells: PipelineJobRecord[];
  needs: string[];
  column: number;
  x: number;
  y: number;
  h: number;
}

/** Lays the jobs out left to right by `needs` (a job sits one column right of its last need). */
function layout(jobs: PipelineJobRecord[]): { groups: Group[]; width: number; height: number } {
  const byBase = new Map<string, Group>();
  for (const j of jobs) {
    const base = baseName(j.name);
    let g = byBase.get(base);
    if (!g) byBase.set(base, (g = { base, cells: [], needs: [], column: 0, x: 0, y: 0, h: 0 }));
    g.cells.push(j);
    for (const n of j.needs) {
      const target =
        byBase.has(baseName(n)) || jobs.some((o) => baseName(o.name) === baseName(n)) ? baseName(n) : n;
      if (target !== base && !g.needs.includes(target)) g.needs.push(target);
    }
  }
  const column = (g: Group, seen: Set<string>): number => {
    if (seen.has(g.base)) return 0; // a cycle cannot be planned; drawn flat rather than looping
    seen.add(g.base);
    let c = 0;
    for (const n of g.needs) {
      const dep = byBase.get(n);
      if (dep) c = Math.max(c, column(dep, seen) + 1);
    }
    seen.delete(g.base);
    return c;
  };
  const groups = [...byBase.values()];
  const heights: number[] = [];
  for (const g of groups) {
    g.column = column(g, new Set());
    const matrix = g.cells.length > 1;
    g.h = matrix ? GROUP_HEAD + GROUP_PAD + g.cells.length * (BOX_H + GAP_Y) - GAP_Y + GROUP_PAD : BOX_H;
    g.x = 20 + g.column * (BOX_W + 2 * GROUP_PAD + GAP_X);
    g.y = 20 + (heights[g.column] ?? 0);
    heights[g.column] = (heights[g.column] ?? 0) + g.h + 2 * GAP_Y;
  }
  const columns = Math.max(1, ...groups.map((g) => g.column + 1));
  return {
    groups,
    width: 40 + columns * (BOX_W + 2 * GROUP_PAD) + (columns - 1) * GAP_X,
    height: 40 + Math.max(BOX_H, ...heights),
  };
}

function cellSvg(j: PipelineJobRecord, x: number, y: number): string {
  const c = colour(j.state);
  const why = j.state === 'skipped' || j.state === 'cancelled' ? (j.message ?? j.state) : j.state;
  const title = `${j.name}: ${j.state}${j.message ? ` (${j.message})` : ''}`;
  const body =
    `<rect x="${x}" y="${y}" width="${BOX_W}" height="${BOX_H}" rx="6" fill="${c.fill}" stroke="#57606a" stroke-width="1"/>` +
    `<text x="${x + 10}" y="${y + 16}" fill="${c.text}" font-size="13" font-weight="600">${escapeHtml(clip(j.name, 26))}</text>` +
    `<text x="${x + 10}" y="${y + 32}" fill="${c.text}" font-size="11" class="why">${escapeHtml(clip(why, 32))}</text>`;
  const cell = `<g class="job job-${escapeHtml(j.state)}" data-job="${escapeHtml(j.name)}"><title>${escapeHtml(title)}</title>${body}</g>`;
  return j.jobId ? `<a href="/jobs/${escapeHtml(j.jobId)}">${cell}</a>` : cell;
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** The jobs as an SVG graph: boxes coloured by state, arrows for `needs`, matrix cells framed together. */
export function pipelineGraph(jobs: PipelineJobRecord[]): string {
  const { groups, width, height } = layout(jobs);
  const byBase = new Map(groups.map((g) => [g.base, g]));
  const parts: string[] = [];
  const outerW = BOX_W + 2 * GROUP_PAD;
  for (const g of groups) {
    for (const n of g.needs) {
      const from = byBase.get(n);
      if (!from) continue;
      const x1 = from.x + outerW;
      const y1 = from.y + from.h / 2;
      const x2 = g.x;
      const y2 = g.y + g.h / 2;
      const mid = (x1 + x2) / 2;
      parts.push(
        `<path class="need" data-from="${escapeHtml(from.base)}" data-to="${escapeHtml(g.base)}" d="M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2 - 2},${y2}" fill="none" stroke="#57606a" stroke-width="1.5" marker-end="url(#arrow)"/>`,
      );
    }
  }
  for (const g of groups) {
    if (g.cells.length > 1) {
      parts.push(
        `<g class="matrix" data-job="${escapeHtml(g.base)}"><rect x="${g.x}" y="${g.y}" width="${outerW}" height="${g.h}" rx="8" fill="none" stroke="#8c959f" stroke-dasharray="4 3"/>` +
          `<text x="${g.x + GROUP_PAD}" y="${g.y + 14}" font-size="12" fill="#1d1d1f">${escapeHtml(clip(g.base, 24))} (${g.cells.length})</text>`,
      );
      g.cells.forEach((c, i) =>
        parts.push(cellSvg(c, g.x + GROUP_PAD, g.y + GROUP_HEAD + GROUP_PAD + i * (BOX_H + GAP_Y))),
      );
      parts.push('</g>');
    } else parts.push(cellSvg(g.cells[0], g.x + GROUP_PAD, g.y));
  }
  return (
    `<svg id="graph" xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="graph-title" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui,sans-serif">` +
    `<title id="graph-title">Jobs of this pipeline and what each needs (the table below lists them)</title>` +
    `<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#57606a"/></marker></defs>` +
    parts.join('') +
    `</svg>`
  );
}

export interface PipelinePageView {
  pipeline: PipelineRecord;
  label: string;
  jobs: PipelineJobRecord[];
  /** The forms for a viewer who may change the pipeline (write access and a session). */
  canChange: boolean;
  viewer: Viewer;
  repoHref?: string;
}

/** `/pipelines/<id>`: the jobs as a graph and a table, each linked to its job page. */
export function renderPipelinePage(v: PipelinePageView): string {
  const p = v.pipeline;
  const rows = v.jobs
    .map((j) => {
      const name = escapeHtml(j.name);
      const link = j.jobId ? `<a href="/jobs/${escapeHtml(j.jobId)}">${name}</a>` : name;
      const needs = j.needs.map(escapeHtml).join(', ');
      return `<tr class="step-${escapeHtml(j.state)}"><td>${link}</td><td>${escapeHtml(j.state)}</td><td>${needs}</td><td>${escapeHtml(j.message ?? '')}</td></tr>`;
    })
    .join('');
  const csrf = `<input type="hidden" name="_csrf" value="${escapeHtml(v.viewer.csrf ?? '')}">`;
  const forms = v.canChange
    ? `<div class="actions">` +
      (p.state === 'running'
        ? `<form method="post" action="/pipelines/${escapeHtml(p.id)}/cancel">${csrf}<button type="submit" id="cancel">Cancel</button></form>`
        : '') +
      `<form method="post" action="/pipelines/${escapeHtml(p.id)}/rerun">${csrf}<button type="submit" id="rerun">Rerun</button></form>` +
      `<form method="post" action="/pipelines/${escapeHtml(p.id)}/rerun">${csrf}<input type="hidden" name="failed" value="1"><button type="submit" id="rerun-failed">Rerun failed jobs</button></form>` +
      `</div>`
    : '';
  const repo = v.repoHref
    ? `<a href="${escapeHtml(v.repoHref)}">${escapeHtml(p.repoUrl)}</a>`
    : escapeHtml(p.repoUrl);
  return pageShell(
    `${p.state} · ${v.label}`,
    [
      `<header>${viewerBar(v.viewer)}<h1>Pipeline ${escapeHtml(v.label)} <span class="state state-${escapeHtml(p.state)}" id="state">${escapeHtml(p.state)}</span></h1>`,
      `<div>${repo} @ <code>${escapeHtml(p.commitSha.slice(0, 12))}</code>${p.ref ? ` (${escapeHtml(p.ref)})` : ''} · ${escapeHtml(p.event)} · pipeline ${escapeHtml(p.id)}</div>`,
      p.rerunOf
        ? `<div class="sub">rerun of <a href="/pipelines/${escapeHtml(p.rerunOf)}">${escapeHtml(p.rerunOf)}</a></div>`
        : '',
      p.message ? `<div class="message">${escapeHtml(p.message)}</div>` : '',
      `${forms}</header><main><div class="graph">${pipelineGraph(v.jobs)}</div>`,
      `<table id="jobs"><caption>Jobs</caption><thead><tr><th>job</th><th>state</th><th>needs</th><th>why</th></tr></thead><tbody>${rows}</tbody></table></main>`,
    ].join(''),
    EXTRA_STYLE,
  );
}

const BADGE_COLOURS: Record<string, string> = {
  success: '#1a7f37',
  failure: '#cf222e',
  error: '#cf222e',
  running: '#9a6700',
  cancelled: '#6e7781',
};

/** A shields-style badge: `solstice | <state>`; `unknown` when the branch has no pipeline. */
export function badgeSvg(state: string | undefined): string {
  const label = 'solstice';
  const value = state ?? 'unknown';
  // Verdana 11px averages about 6.5 px a character; the badge only needs to fit, not kern.
  const lw = Math.round(label.length * 6.5 + 12);
  const vw = Math.round(value.length * 6.5 + 12);
  const fill = BADGE_COLOURS[value] ?? '#9f9f9f';
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${lw + vw}" height="20" role="img" aria-label="${label}: ${escapeHtml(value)}">` +
    `<title>${label}: ${escapeHtml(value)}</title>` +
    `<rect width="${lw}" height="20" rx="3" fill="#555"/><rect x="${lw}" width="${vw}" height="20" rx="3" fill="${fill}"/>` +
    `<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">` +
    `<text x="${lw / 2}" y="14">${label}</text><text x="${lw + vw / 2}" y="14">${escapeHtml(value)}</text></g></svg>`
  );
}
