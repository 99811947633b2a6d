/**
 * How long the Actions planner takes on large workflow files: parse (GitHub's schema, with
 * @actions/workflow-parser), check the subset, expand matrices and plan the jobs for a push.
 * The files are generated: N jobs, each with a 2×3 matrix, `needs` on the job before and run
 * steps with expressions, until the file reaches the size asked for.
 *
 *   npm run bench:actions -- [--kb 100,500,1000] [--runs 5]
 */
import { parseArgs } from 'node:util';
import { planActions } from '../workflow-file/actions';

function workflowOf(targetBytes: number): string {
  const head = 'name: big\non:\n  push:\n    branches: [main]\nenv:\n  GREETING: hello\njobs:\n';
  const parts = [head];
  let size = head.length;
  for (let j = 0; size < targetBytes; j++) {
    const steps = Array.from(
      { length: 20 },
      (_, s) =>
        `      - name: step ${s}\n        if: matrix.os != 'never'\n        env:\n          N: "${s}"\n        run: |\n          echo "job ${j} step ${s} on \${{ matrix.os }} node \${{ matrix.node }}"\n          test -n "$N"\n`,
    ).join('');
    const job =
      `  job${j}:\n    runs-on: ubuntu-latest\n${j > 0 ? `    needs: job${j - 1}\n` : ''}` +
      `    strategy:\n      matrix:\n        os: [a, b]\n        node: [18, 20, 22]\n    steps:\n${steps}`;
    parts.push(job);
    size += job.length;
  }
  return parts.join('');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { kb: { type: 'string', default: '100,500,1000' }, runs: { type: 'string', default: '5' } },
  });
  const sizes = values.kb.split(',').map(Number);
  const runs = Number(values.runs);
  const rows: string[][] = [['file', 'jobs planned', 'errors', 'first run', 'median of the rest']];
  for (const kb of sizes) {
    const text = workflowOf(Math.min(kb * 1024, 1024 * 1024 - 4096));
    const times: number[] = [];
    let jobs = 0;
    let errors = 0;
    for (let r = 0; r < runs; r++) {
      const start = performance.now();
      const plan = await planActions(
        [{ path: '.forgejo/workflows/big.yml', text }],
        { event: 'push', ref: 'refs/heads/main', sha: 'abc' },
        { runsOn: { local: ['ubuntu-latest'] } },
      );
      times.push(performance.now() - start);
      jobs = plan.jobs.length;
      errors = plan.errors.reduce((n, e) => n + e.diagnostics.length, 0);
    }
    const rest = times.slice(1).sort((a, b) => a - b);
    const median = rest.length ? rest[Math.floor(rest.length / 2)] : times[0];
    rows.push([
      `${(text.length / 1024).toFixed(0)} KiB`,
      String(jobs),
      String(errors),
      `${times[0].toFixed(0)} ms`,
      `${median.toFixed(0)} ms`,
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(`| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`);
}

void main();
