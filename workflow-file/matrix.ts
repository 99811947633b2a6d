/** Matrix jobs: one instance per combination of axis values. */
import type { Job, Matrix } from './model';

export interface JobInstance {
  /** `test` for plain jobs, `test[node=20,os=local]` for matrix instances. */
  id: string;
  jobId: string;
  /** Axis values of this instance (empty for plain jobs). */
  values: Record<string, string>;
  /** `runs-on` with `${matrix.<axis>}` replaced. */
  runsOn: string;
  /** The job's env plus `MATRIX_<AXIS>` for each axis. */
  env: Record<string, string>;
}

export const MAX_MATRIX_INSTANCES = 64;

export const MATRIX_REFERENCE = /\$\{matrix\.([^}]*)\}/g;

/** Environment variable name for an axis: `node-version` → `MATRIX_NODE_VERSION`. */
export function matrixEnvName(axis: string): string {
  return `MATRIX_${axis.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

export function matrixSize(matrix: Matrix | undefined): number {
  return matrix ? matrix.axes.reduce((n, axis) => n * axis.values.length, 1) : 1;
}

export function combinations(matrix: Matrix): Record<string, string>[] {
  let out: Record<string, string>[] = [{}];
  for (const axis of matrix.axes) {
    out = out.flatMap((partial) => axis.values.map((value) => ({ ...partial, [axis.name]: value })));
  }
  return out;
}

export function expandJob(job: Job): JobInstance[] {
  if (!job.matrix)
    return [{ id: job.id, jobId: job.id, values: {}, runsOn: job.runsOn, env: { ...job.env } }];
  return combinations(job.matrix).map((values) => {
    const env = { ...job.env };
    for (const [axis, value] of Object.entries(values)) env[matrixEnvName(axis)] = value;
    return {
      id: `${job.id}[${Object.entries(values)
        .map(([k, v]) => `${k}=${v}`)
        .join(',')}]`,
      jobId: job.id,
      values,
      runsOn: job.runsOn.replace(MATRIX_REFERENCE, (ref: string, axis: string) =>
        Object.hasOwn(values, axis) ? values[axis] : ref,
      ),
      env,
    };
  });
}
