/**
 * Checks across jobs, after the file's structure is known: duplicate ids, unknown `needs`,
 * dependency cycles, matrix references, and labels missing from the image map (a warning).
 */
import type { Node } from '@bgotink/kdl';
import { jobGraph } from './dag';
import type { Diagnostics, Span } from './diagnostics';
import { expandJob, MATRIX_REFERENCE, MAX_MATRIX_INSTANCES, matrixSize } from './matrix';
import type { Job, WorkflowFile } from './model';
import { didYouMean } from './suggest';

/** A parsed job with the locations validation points at. */
export interface JobSource {
  job: Job;
  node: Node;
  idSpan: Span;
  runsOnSpan?: Span;
  matrixSpan?: Span;
  needs: { id: string; span: Span }[];
  stepNames: Map<string, Span>;
}

export interface WorkflowSource {
  workflow: WorkflowFile;
  jobs: JobSource[];
}

export function validateWorkflow(
  source: WorkflowSource,
  out: Diagnostics,
  knownLabels: readonly string[],
): void {
  const first = new Map<string, JobSource>();
  for (const js of source.jobs) {
    const seen = first.get(js.job.id);
    if (seen) {
      out.error(
        'duplicate-job',
        `duplicate job id "${js.job.id}" (first defined at ${seen.idSpan.start.line}:${seen.idSpan.start.column})`,
        js.idSpan,
        { hint: 'give every job its own id' },
      );
    } else first.set(js.job.id, js);
  }
  const ids = [...first.keys()];

  for (const js of source.jobs) {
    const listed = new Set<string>();
    for (const need of js.needs) {
      if (!first.has(need.id)) {
        out.error(
          'unknown-need',
          `job "${js.job.id}" needs "${need.id}", which is not a job in this file`,
          need.span,
          {
            suggestion: didYouMean(need.id, ids),
            hint: `jobs in this file: ${ids.join(', ')}`,
          },
        );
      } else if (listed.has(need.id)) {
        out.warning('duplicate-need', `job "${js.job.id}" lists "${need.id}" in needs twice`, need.span);
      }
      listed.add(need.id);
    }
    checkMatrix(js, out);
  }

  const graph = jobGraph([...first.values()].map((js) => js.job));
  for (const cycle of graph.cycles) {
    const js = first.get(cycle[0])!;
    const at = js.needs.find((n) => n.id === cycle[1])?.span ?? js.idSpan;
    out.error('cycle', `dependency cycle: ${cycle.join(' -> ')}`, at, {
      hint: '"a -> b" means job a needs job b; remove one of these needs',
    });
  }

  checkLabels(source.jobs, out, knownLabels);
}

function checkMatrix(js: JobSource, out: Diagnostics): void {
  const axes = js.job.matrix?.axes.map((a) => a.name) ?? [];
  for (const m of js.job.runsOn.matchAll(MATRIX_REFERENCE)) {
    const axis = m[1];
    if (axes.includes(axis)) continue;
    const at = js.runsOnSpan ?? js.idSpan;
    if (axes.length === 0) {
      out.error(
        'matrix-reference',
        `runs-on uses \${matrix.${axis}} but job "${js.job.id}" has no matrix`,
        at,
        {
          hint: `add matrix { ${axis || 'axis'} "value" ... } to the job`,
        },
      );
    } else {
      out.error(
        'matrix-reference',
        `runs-on uses \${matrix.${axis}} but the matrix has no axis "${axis}"`,
        at,
        {
          suggestion: didYouMean(axis, axes),
          hint: `axes: ${axes.join(', ')}`,
        },
      );
    }
  }
  const size = matrixSize(js.job.matrix);
  if (size > MAX_MATRIX_INSTANCES) {
    out.error(
      'matrix-too-large',
      `matrix makes ${size} jobs, more than the ${MAX_MATRIX_INSTANCES} allowed`,
      js.matrixSpan ?? js.idSpan,
      {
        hint: 'use fewer axes or values',
      },
    );
  }
}

function checkLabels(jobs: JobSource[], out: Diagnostics, knownLabels: readonly string[]): void {
  for (const js of jobs) {
    if (matrixSize(js.job.matrix) > MAX_MATRIX_INSTANCES) continue;
    const labels = new Set(expandJob(js.job).map((instance) => instance.runsOn));
    for (const label of labels) {
      if (knownLabels.includes(label) || label.includes('${')) continue;
      out.warning(
        'unknown-label',
        `runs-on label "${label}" of job "${js.job.id}" is not in the image map (known labels: ${knownLabels.join(', ') || 'none'})`,
        js.runsOnSpan ?? js.idSpan,
        {
          suggestion: didYouMean(label, knownLabels),
          hint: 'add an image for this label on the VM hosts, or pass it with --label if it exists',
        },
      );
    }
  }
}
