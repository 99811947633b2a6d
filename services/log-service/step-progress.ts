/**
 * Step progress from the log stream: the runner announces each step on its SYSTEM stream
 * (runner/run-job.ts writes `step <i>/<n> "<name>" started`, optionally `in <dir>`); the log
 * service passes that on to the job's workflow, whose current details then name the step.
 */
const STEP_STARTED = /^step (\d+)\/(\d+) "(.*)" started(?: in .*)?$/;

export interface StepStarted {
  index: number;
  total: number;
  name: string;
}

export function stepStarted(stream: string, text: string): StepStarted | undefined {
  if (stream !== 'system') return undefined;
  const m = STEP_STARTED.exec(text);
  return m ? { index: Number(m[1]), total: Number(m[2]), name: m[3] } : undefined;
}
