/**
 * Warms the Actions parser in a fresh planning thread before its first real file. Measured with
 * `npm run bench:actions`: a thread's first 500 KB workflow costs about twice the CPU of later
 * ones, because V8 still interprets the YAML, schema and expression code and the schema is not
 * loaded yet. Planning a small workflow that touches the same paths a few dozen times (about
 * 0.3 s of CPU, in the thread, once) takes most of that first-file penalty away.
 */
import { planActions } from './plan';

/** Jobs with a matrix, `needs`, expressions in `if`, `env`, `run` and outputs: the parser's hot paths. */
const SAMPLE = `name: warm-up
on:
  push:
    branches: [main, 'release/**']
    paths-ignore: ['docs/**']
env:
  GREETING: hello
defaults:
  run:
    shell: bash
jobs:
  build:
    runs-on: ubuntu-latest
    timeout-minutes: 10
    outputs:
      version: \${{ steps.v.outputs.version }}
    strategy:
      fail-fast: false
      matrix:
        os: [a, b]
        node: [18, 20]
        exclude:
          - os: b
            node: 18
        include:
          - os: c
            node: 22
    steps:
      - uses: actions/checkout@v4
      - id: v
        name: version on \${{ matrix.os }}
        if: matrix.os != 'never' && github.ref == 'refs/heads/main'
        env:
          N: "\${{ matrix.node }}"
        run: |
          echo "version=1.\${{ matrix.node }}" >> "$GITHUB_OUTPUT"
          test -n "$N"
      - name: fails only
        if: failure()
        continue-on-error: true
        working-directory: sub
        run: echo "\${{ format('{0}-{1}', matrix.os, env.GREETING) }}"
  test:
    needs: build
    runs-on: [self-hosted, linux]
    if: \${{ github.event_name == 'push' }}
    steps:
      - run: echo "\${{ needs.build.outputs.version }} \${{ contains(github.ref, 'main') }}"
        shell: sh
`;

export async function warmUpActionsParser(rounds = 30, stop: () => boolean = () => false): Promise<void> {
  for (let i = 0; i < rounds && !stop(); i++) {
    await planActions(
      [{ path: '.forgejo/workflows/warm-up.yml', text: SAMPLE }],
      { event: 'push', ref: 'refs/heads/main', sha: '0'.repeat(40), changedFiles: ['src/a.ts'] },
      { runsOn: { local: ['ubuntu-latest', 'self-hosted', 'linux'] } },
    );
    // Let a real job that arrived meanwhile go first.
    await new Promise((resolve) => setImmediate(resolve));
  }
}
