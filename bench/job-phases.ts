/**
 * Where one job's time goes, from the spans its trace holds: Temporal's (client start, each
 * activity's execution), the log service's (one per runner call) and the runner's (the job,
 * each step). Each phase runs from the end of the one before to its own milestone, so the phases
 * add up to enqueue → last milestone, and what lies between two spans (a workflow task, a
 * signal, a process starting) is counted in the phase it delays.
 */
import type { CollectedSpan } from './span-collector';
import { ATTR } from '../model/span-attributes';

export const PHASES = [
  'workflow start',
  'record',
  'lease',
  'provision',
  'runner download',
  'runner start',
  'runner connect',
  'checkout',
  'script',
  'log drain',
  'destroy',
  'finalize',
  'forge report',
] as const;
export type Phase = (typeof PHASES)[number];

export interface JobBreakdown {
  /** Milliseconds per phase; a phase the job did not have (forge report of a manual job) is absent. */
  phases: Partial<Record<Phase, number>>;
  /** Enqueue → last milestone. */
  totalMs: number;
  scriptMs: number;
}

/** Every span of the trace that carries `jobId` (the provisioning activity and the runner tag theirs). */
export function spansOfJob(all: readonly CollectedSpan[], jobId: string): CollectedSpan[] {
  const traces = new Set(all.filter((s) => s.attributes[ATTR.jobId] === jobId).map((s) => s.traceId));
  return all.filter((s) => traces.has(s.traceId));
}

export function breakdown(spans: readonly CollectedSpan[], enqueuedAtMs: number): JobBreakdown {
  const named = (name: string) => spans.filter((s) => s.name === name).sort((a, b) => a.startMs - b.startMs);
  const first = (name: string): CollectedSpan => {
    const s = named(name)[0];
    if (!s) throw new Error(`the job's trace has no "${name}" span`);
    return s;
  };
  const last = (...names: string[]): CollectedSpan => {
    const s = names
      .flatMap(named)
      .sort((a, b) => a.endMs - b.endMs)
      .pop();
    if (!s) throw new Error(`the job's trace has no "${names.join('" or "')}" span`);
    return s;
  };
  const start = spans.find((s) => s.name === 'StartWorkflow:JobWorkflow')?.startMs ?? enqueuedAtMs;
  const record = first('RunActivity:recordJob');
  const provision = last('RunActivity:provisionMachine');
  // The runner's own spans may not get out (a VM runner's export cut short by its poweroff): then
  // its connect phase runs from the end of provisioning, and the script from the first step
  // report to the last, as the log service saw them.
  const runner = named('runner job')[0];
  const steps = spans.filter((s) => s.name.startsWith('runner step')).sort((a, b) => a.startMs - b.startMs);
  const reports = named('log-service ReportStep');
  let scriptStart: number;
  let scriptEnd: number;
  if (steps.length > 0) {
    scriptStart = steps[0].startMs;
    scriptEnd = Math.max(...steps.map((s) => s.endMs));
  } else if (reports.length >= 2) {
    scriptStart = reports[0].startMs;
    scriptEnd = reports[reports.length - 1].startMs;
  } else throw new Error("the job's trace has neither runner step spans nor the log service's step reports");
  const forge = named('RunActivity:reportForgeStatus');

  const milestones: [Phase, number][] = [
    ['workflow start', record.startMs],
    ['record', record.endMs],
    ['lease', last('RunActivity:requestLease', 'RunActivity:checkLease').endMs],
    ['provision', provision.endMs],
    ...(runner
      ? ([
          ['runner download', Number(runner.attributes[ATTR.runnerProcessStart] ?? runner.startMs)],
          ['runner start', runner.startMs],
        ] as [Phase, number][])
      : []),
    ['runner connect', first('log-service StartJob').endMs],
    ['checkout', scriptStart],
    ['script', scriptEnd],
    ['log drain', last('log-service FinishJob').endMs],
    ['destroy', last('RunActivity:destroyMachine').endMs],
    ['finalize', last('RunActivity:finalizeJob').endMs],
  ];
  // The final report, after finalize (the pending one runs beside the job).
  const final = forge.filter((r) => r.startMs >= milestones[milestones.length - 1][1]).pop();
  if (final) milestones.push(['forge report', final.endMs]);

  const phases: Partial<Record<Phase, number>> = {};
  let at = start;
  for (const [phase, t] of milestones) {
    // A warm pool's runner started before its job was provisioned: its download and start took
    // none of the job's time, so those phases are 0, never negative.
    phases[phase] = Math.max(0, t - at);
    at = Math.max(at, t);
  }
  return { phases, totalMs: at - start, scriptMs: scriptEnd - scriptStart };
}
