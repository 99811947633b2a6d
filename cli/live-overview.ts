/**
 * The jobs/steps overview `enqueue -f` and `logs -f` keep at the bottom of a terminal, as
 * `gh run watch` does: one line per job (state, the step it runs, time so far), redrawn in
 * place while the interleaved log lines scroll above it. Only for a terminal: on a pipe the
 * output stays plain lines (no escape sequences for scripts to strip).
 */
import type { JobStepRecord } from '../storage/job-store';
import { formatElapsed } from './output';

export interface OverviewJob {
  name: string;
  state: string;
  /** The step it runs now, as the runner reported it. */
  step?: Pick<JobStepRecord, 'index' | 'name'>;
  startedAt?: Date | null;
  finishedAt?: Date | null;
}

const ICONS: Record<string, string> = {
  waiting: '·',
  queued: '·',
  provisioning: '○',
  running: '●',
  success: '✓',
  failure: '✗',
  error: '!',
  cancelled: '⊘',
  skipped: '-',
};

/**
 * The block's lines: a job per line, cut to `columns` so no line wraps (a wrapped line would
 * throw off the count of lines to redraw).
 */
export function overviewLines(jobs: OverviewJob[], now: Date, columns: number): string[] {
  const width = Math.max(0, ...jobs.map((j) => j.name.length));
  const lines = jobs.map((j) => {
    const step = j.state === 'running' && j.step ? `step ${j.step.index} ${j.step.name}` : '';
    const time = j.startedAt ? formatElapsed((j.finishedAt ?? now).getTime() - j.startedAt.getTime()) : '';
    const line = `${ICONS[j.state] ?? '?'} ${j.name.padEnd(width)}  ${j.state.padEnd(12)}${[time, step].filter(Boolean).join('  ')}`;
    return line.trimEnd();
  });
  const head = `── jobs ${'─'.repeat(Math.max(0, Math.min(columns, 60) - 8))}`;
  return [head, ...lines].map((l) => (l.length > columns ? `${l.slice(0, Math.max(1, columns - 1))}…` : l));
}

/** Something the follower writes whole lines to. */
export interface LineSink {
  write(text: string): unknown;
}

/**
 * A status block kept under the lines written through it: each write erases the block (cursor
 * up its height, clear to the end of the screen), writes the lines, and draws it again.
 */
export class StatusBlock implements LineSink {
  private block: string[] = [];
  private shown = 0;

  constructor(private readonly out: NodeJS.WritableStream) {}

  private erase(): string {
    return this.shown > 0 ? `\u001b[${this.shown}F\u001b[J` : '';
  }

  private draw(): string {
    this.shown = this.block.length;
    return this.block.map((l) => `${l}\n`).join('');
  }

  write(text: string): boolean {
    return this.out.write(`${this.erase()}${text}${this.draw()}`);
  }

  update(lines: string[]): void {
    if (lines.join('\n') === this.block.join('\n')) return;
    const erase = this.erase();
    this.block = lines;
    this.out.write(`${erase}${this.draw()}`);
  }

  /** Removes the block; what follows (the summary table) is written plainly. */
  close(): void {
    this.out.write(this.erase());
    this.block = [];
    this.shown = 0;
  }
}
