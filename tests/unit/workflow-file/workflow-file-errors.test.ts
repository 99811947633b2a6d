/**
 * Malformed workflow files: each case asserts every diagnostic, with its exact line, column and
 * message. Warnings-only cases (a v1 file, a repeated need, an unknown label) still parse.
 */
import { formatDiagnostic, parseWorkflowFile } from '../../../workflow-file';

type Case = [name: string, source: string, expected: string[]];

const CASES: Case[] = [
  [
    'secret name that is no variable name',
    'job "a" {\n  secrets "OK_TOKEN" "not-a-name"\n  step "x" run="y"\n}\n',
    ['2:22 error bad-secret: "not-a-name" is not a valid environment variable name'],
  ],
  [
    'unclosed block',
    'job "a" {\n  step "x" run="y"\n',
    ['3:1 error syntax: invalid node children at end of input'],
  ],
  [
    'stray closing brace',
    'job "a" {\n  step "x" run="y"\n}\n}\n',
    ['4:1 error syntax: unexpected token "}", did you forget to quote an identifier?'],
  ],
  [
    'unterminated string',
    'job "a" {\n  step "x" run="y\n}\n',
    ['4:1 error syntax: unexpected EOF inside string'],
  ],
  ['property without value', 'job "a" {\n  step "x" run=\n}\n', ['2:16 error syntax: expected a value']],
  [
    'bare keyword true (v2)',
    'job "a" {\n  step "x" run="y" continue-on-error=true run2=#nul\n}\n',
    [
      '2:42 error syntax: invalid keyword "true", add a leading # to use the keyword or surround with quotes to make it a string',
      '2:48 error syntax: invalid keyword #nul, did you mean #null?',
    ],
  ],
  [
    'unclosed comment',
    'job "a" {\n  step "x" run="y"\n}\n/* trailing\n',
    ['5:1 error syntax: unexpected EOF in multiline comment'],
  ],
  [
    'v1 file warns',
    'job "a" {\n  step "x" run="y" continue-on-error=true\n}\n',
    ['1:1 warning kdl-v1: this file is written in KDL v1'],
  ],
  [
    'bare identifier value with space',
    'job "a" {\n  step x y run="z"\n}\n',
    ['2:10 error extra-argument: "step" takes one argument'],
  ],
  ['empty file', '', ['1:1 error no-jobs: the workflow has no jobs']],
  ['only comments', '// nothing here\n', ['1:1 error no-jobs: the workflow has no jobs']],
  [
    'unknown top-level node',
    'jobs "a" {\n  step "x" run="y"\n}\n',
    ['1:1 error unknown-node: unknown node "jobs" at the top level; did you mean "job"?'],
  ],
  [
    'step at top level',
    'step "x" run="y"\njob "a" {\n  step "x" run="y"\n}\n',
    ['1:1 error unknown-node: unknown node "step" at the top level'],
  ],
  [
    'unknown job child with did you mean',
    'job "a" {\n  runs_on "local"\n  step "x" run="y"\n}\n',
    ['2:3 error unknown-node: unknown node "runs_on" in job "a"; did you mean "runs-on"?'],
  ],
  [
    'alias depends-on',
    'job "a" {\n  step "x" run="y"\n}\njob "b" {\n  depends-on "a"\n  step "x" run="y"\n}\n',
    ['5:3 error unknown-node: unknown node "depends-on" in job "b"; did you mean "needs"?'],
  ],
  [
    'unknown node without suggestion',
    'job "a" {\n  frobnicate 1\n  step "x" run="y"\n}\n',
    ['2:3 error unknown-node: unknown node "frobnicate" in job "a"'],
  ],
  [
    'unknown step property',
    'job "a" {\n  step "x" run="y" continue-on-eror=#true\n}\n',
    [
      '2:20 error unknown-property: unknown property "continue-on-eror" on step; did you mean "continue-on-error"?',
    ],
  ],
  [
    'step property alias workdir',
    'job "a" {\n  step "x" run="y" workdir="web"\n}\n',
    ['2:20 error unknown-property: unknown property "workdir" on step; did you mean "working-directory"?'],
  ],
  [
    'property on job',
    'job "a" runs-on="local" {\n  step "x" run="y"\n}\n',
    ['1:9 error unknown-property: job takes no property "runs-on"'],
  ],
  [
    'run as child node',
    'job "a" {\n  step "x" {\n    run "y"\n  }\n}\n',
    [
      '2:3 error missing-run: step "x" has no run script',
      '2:13 error unexpected-children: step takes no block',
    ],
  ],
  ['missing run', 'job "a" {\n  step "x"\n}\n', ['2:3 error missing-run: step "x" has no run script']],
  ['empty run', 'job "a" {\n  step "x" run="  "\n}\n', ['2:16 error empty-run: run script is empty']],
  [
    'step name not a string',
    'job "a" {\n  step 1 run="y"\n}\n',
    ['2:8 error bad-type: step must be a string, got the number 1'],
  ],
  [
    'duplicate step names',
    'job "a" {\n  step "x" run="y"\n  step "x" run="z"\n}\n',
    ['3:8 error duplicate-step: duplicate step "x" in job "a" (first at 2:8)'],
  ],
  [
    'duplicate property',
    'job "a" {\n  step "x" run="y" run="z"\n}\n',
    ['2:20 error duplicate-property: duplicate property "run" (first at 2:12)'],
  ],
  ['job without block', 'job "a"\n', ['1:1 error no-steps: job "a" has no steps']],
  ['job without steps', 'job "a" {\n  runs-on "local"\n}\n', ['1:1 error no-steps: job "a" has no steps']],
  ['job without id', 'job {\n  step "x" run="y"\n}\n', ['1:1 error missing-argument: "job" needs an id']],
  [
    'job with two ids',
    'job "a" "b" {\n  step "x" run="y"\n}\n',
    ['1:9 error extra-argument: "job" takes one argument'],
  ],
  ['bad job id', 'job "a b" {\n  step "x" run="y"\n}\n', ['1:5 error bad-job-id: job id "a b" is not valid']],
  [
    'duplicate job ids',
    'job "a" {\n  step "x" run="y"\n}\njob "a" {\n  step "x" run="y"\n}\n',
    ['4:5 error duplicate-job: duplicate job id "a" (first defined at 1:5)'],
  ],
  [
    'unknown needs',
    'job "build" {\n  step "x" run="y"\n}\njob "test" {\n  needs "biuld"\n  step "x" run="y"\n}\n',
    [
      '5:9 error unknown-need: job "test" needs "biuld", which is not a job in this file; did you mean "build"?',
    ],
  ],
  [
    'self need',
    'job "a" {\n  needs "a"\n  step "x" run="y"\n}\n',
    ['2:9 error cycle: dependency cycle: a -> a'],
  ],
  [
    'cycle of three',
    'job "a" {\n  needs "c"\n  step "x" run="y"\n}\njob "b" {\n  needs "a"\n  step "x" run="y"\n}\njob "c" {\n  needs "b"\n  step "x" run="y"\n}\n',
    ['2:9 error cycle: dependency cycle: a -> c -> b -> a'],
  ],
  [
    'two cycles',
    'job "a" {\n  needs "b"\n  step "x" run="y"\n}\njob "b" {\n  needs "a"\n  step "x" run="y"\n}\njob "c" {\n  needs "d"\n  step "x" run="y"\n}\njob "d" {\n  needs "c"\n  step "x" run="y"\n}\n',
    ['2:9 error cycle: dependency cycle: a -> b -> a', '10:9 error cycle: dependency cycle: c -> d -> c'],
  ],
  [
    'needs a number',
    'job "a" {\n  needs 1\n  step "x" run="y"\n}\n',
    ['2:9 error bad-type: needs must be a string, got the number 1'],
  ],
  [
    'needs nothing',
    'job "a" {\n  needs\n  step "x" run="y"\n}\n',
    ['2:3 error missing-argument: "needs" needs at least one job id'],
  ],
  [
    'duplicate need warns',
    'job "a" {\n  step "x" run="y"\n}\njob "b" {\n  needs "a" "a"\n  step "x" run="y"\n}\n',
    ['5:13 warning duplicate-need: job "b" lists "a" in needs twice'],
  ],
  [
    'timeout without unit',
    'job "a" {\n  timeout "30"\n  step "x" run="y"\n}\n',
    ['2:11 error bad-duration: duration "30" has no unit'],
  ],
  [
    'timeout as number',
    'job "a" {\n  timeout 30\n  step "x" run="y"\n}\n',
    ['2:11 error bad-type: timeout must be a string, got the number 30'],
  ],
  [
    'timeout unknown unit',
    'job "a" {\n  timeout "5w"\n  step "x" run="y"\n}\n',
    ['2:11 error bad-duration: unknown unit "w" in duration "5w"'],
  ],
  [
    'timeout zero',
    'job "a" {\n  timeout "0s"\n  step "x" run="y"\n}\n',
    ['2:11 error bad-duration: duration "0s" is zero'],
  ],
  [
    'timeout units out of order',
    'job "a" {\n  timeout "30m1h"\n  step "x" run="y"\n}\n',
    ['2:11 error bad-duration: duration "30m1h" repeats a unit or lists a smaller unit first'],
  ],
  [
    'timeout too long',
    'job "a" {\n  timeout "8d"\n  step "x" run="y"\n}\n',
    ['2:11 error bad-duration: duration "8d" is longer than the 7d maximum'],
  ],
  [
    'timeout garbage',
    'job "a" {\n  timeout "soon"\n  step "x" run="y"\n}\n',
    ['2:11 error bad-duration: "soon" is not a duration'],
  ],
  [
    'duplicate runs-on',
    'job "a" {\n  runs-on "local"\n  runs-on "local"\n  step "x" run="y"\n}\n',
    ['3:3 error duplicate-node: duplicate node "runs-on" (first at 2:3)'],
  ],
  [
    'runs-on two labels',
    'job "a" {\n  runs-on "local" "other"\n  step "x" run="y"\n}\n',
    ['2:19 error extra-argument: "runs-on" takes one argument'],
  ],
  [
    'unknown label warns',
    'job "a" {\n  runs-on "lokal"\n  step "x" run="y"\n}\n',
    [
      '2:11 warning unknown-label: runs-on label "lokal" of job "a" is not in the image map (known labels: local); did you mean "local"?',
    ],
  ],
  [
    'env argument',
    'job "a" {\n  env "FOO"\n  step "x" run="y"\n}\n',
    ['2:7 error bad-env: env takes NAME="value" properties, not arguments'],
  ],
  [
    'env name not an identifier',
    'env 1FOO="x"\njob "a" {\n  step "x" run="y"\n}\n',
    ['1:6 error syntax: unexpected token "FOO", did you forget to quote an identifier?'],
  ],
  [
    'env bad name',
    'env "FOO-BAR"="x"\njob "a" {\n  step "x" run="y"\n}\n',
    ['1:5 error bad-env: "FOO-BAR" is not a valid environment variable name'],
  ],
  [
    'env duplicate',
    'job "a" {\n  env FOO="1"\n  env FOO="2"\n  step "x" run="y"\n}\n',
    ['3:7 error duplicate-env: FOO is already set at 2:7'],
  ],
  [
    'env number',
    'job "a" {\n  env PORT=8080\n  step "x" run="y"\n}\n',
    ['2:12 error bad-type: PORT must be a string, got the number 8080'],
  ],
  ['env empty', 'job "a" {\n  env\n  step "x" run="y"\n}\n', ['2:3 error empty-env: env sets no variables']],
  [
    'continue-on-error string',
    'job "a" {\n  step "x" run="y" continue-on-error="yes"\n}\n',
    ['2:38 error bad-type: continue-on-error must be #true or #false, got the string "yes"'],
  ],
  [
    'working-directory absolute',
    'job "a" {\n  step "x" run="y" working-directory="/etc"\n}\n',
    ['2:38 error bad-path: working-directory "/etc" must stay inside the checkout'],
  ],
  [
    'artifact escapes checkout',
    'job "a" {\n  step "x" run="y"\n  artifacts "../secrets"\n}\n',
    ['3:13 error bad-path: artifact path "../secrets" must stay inside the checkout'],
  ],
  [
    'unknown event',
    'job "a" {\n  when {\n    events "pull-request"\n  }\n  step "x" run="y"\n}\n',
    ['3:12 error unknown-event: unknown event "pull-request"; did you mean "pull_request"?'],
  ],
  [
    'when child typo',
    'job "a" {\n  when {\n    branch "main"\n  }\n  step "x" run="y"\n}\n',
    ['3:5 error unknown-node: unknown node "branch" in when; did you mean "branches"?'],
  ],
  [
    'empty when',
    'job "a" {\n  when\n  step "x" run="y"\n}\n',
    ['2:3 error empty-when: when has no conditions'],
  ],
  [
    'branch with space',
    'job "a" {\n  when {\n    branches "my branch"\n  }\n  step "x" run="y"\n}\n',
    ['3:14 error bad-branch: branch pattern "my branch" is empty or contains spaces'],
  ],
  [
    'empty matrix',
    'job "a" {\n  matrix {\n  }\n  step "x" run="y"\n}\n',
    ['2:3 error empty-matrix: matrix has no axes'],
  ],
  [
    'matrix axis without values',
    'job "a" {\n  matrix {\n    os\n  }\n  step "x" run="y"\n}\n',
    ['3:5 error empty-axis: matrix axis "os" has no values'],
  ],
  [
    'matrix duplicate value',
    'job "a" {\n  matrix {\n    node 18 18\n  }\n  step "x" run="y"\n}\n',
    ['3:13 error duplicate-value: axis "node" lists "18" twice'],
  ],
  [
    'matrix duplicate axis',
    'job "a" {\n  matrix {\n    node 18\n    node 20\n  }\n  step "x" run="y"\n}\n',
    ['4:5 error duplicate-node: duplicate axis "node" (first at 3:5)'],
  ],
  [
    'matrix reference without matrix',
    'job "a" {\n  runs-on "${matrix.os}"\n  step "x" run="y"\n}\n',
    ['2:11 error matrix-reference: runs-on uses ${matrix.os} but job "a" has no matrix'],
  ],
  [
    'matrix reference typo',
    'job "a" {\n  runs-on "${matrix.oss}"\n  matrix {\n    os "local"\n  }\n  step "x" run="y"\n}\n',
    [
      '2:11 error matrix-reference: runs-on uses ${matrix.oss} but the matrix has no axis "oss"; did you mean "os"?',
    ],
  ],
  [
    'matrix too large',
    'job "a" {\n  matrix {\n    a 1 2 3 4 5\n    b 1 2 3 4 5\n    c 1 2 3\n  }\n  step "x" run="y"\n}\n',
    ['2:3 error matrix-too-large: matrix makes 75 jobs, more than the 64 allowed'],
  ],
  [
    'type annotation',
    'job "a" {\n  (shell)step "x" run="y"\n}\n',
    ['2:3 error type-annotation: type annotations are not used in workflow files'],
  ],
  [
    'children on leaf node',
    'job "a" {\n  runs-on "local" {\n    image "x"\n  }\n  step "x" run="y"\n}\n',
    ['2:20 error unexpected-children: runs-on takes no block'],
  ],
  [
    'duplicate name',
    'name "a"\nname "b"\njob "a" {\n  step "x" run="y"\n}\n',
    ['2:1 error duplicate-node: duplicate node "name" (first at 1:1)'],
  ],
  [
    'workflow name not a string',
    'name #true\njob "a" {\n  step "x" run="y"\n}\n',
    ['1:6 error bad-type: name must be a string, got #true'],
  ],
];

describe('malformed workflow files', () => {
  test('there are at least 30 malformed cases', () => {
    expect(
      CASES.filter(([, , expected]) => expected.some((e) => / error /.test(e))).length,
    ).toBeGreaterThanOrEqual(30);
  });

  test.each(CASES)('%s', (_name, source, expected) => {
    const result = parseWorkflowFile(source);
    expect(
      result.diagnostics.map((d) => `${d.line}:${d.column} ${d.severity} ${d.code}: ${d.message}`),
    ).toEqual(expected);
    const hasErrors = expected.some((e) => / error /.test(e));
    expect(result.ok).toBe(!hasErrors);
    expect(result.workflow === undefined).toBe(hasErrors);
  });
});

describe('diagnostic details', () => {
  test('did you mean is also given as data, and a hint says what to do', () => {
    const [d] = parseWorkflowFile('job "a" {\n  runs_on "local"\n  step "x" run="y"\n}\n').diagnostics;
    expect(d).toEqual({
      severity: 'error',
      code: 'unknown-node',
      message: 'unknown node "runs_on" in job "a"; did you mean "runs-on"?',
      line: 2,
      column: 3,
      endLine: 2,
      endColumn: 10,
      suggestion: 'runs-on',
    });
  });

  test('a node in the wrong place says where it belongs', () => {
    const [d] = parseWorkflowFile('job "a" {\n  run "make"\n  step "x" run="y"\n}\n').diagnostics;
    expect(d.message).toBe('unknown node "run" in job "a"');
    expect(d.hint).toBe('"run" is a property of step: step "name" run=...');
  });

  test('a property that should be a child node says so', () => {
    const [d] = parseWorkflowFile('job "a" timeout="5m" {\n  step "x" run="y"\n}\n').diagnostics;
    expect(d.hint).toBe('write it as a child node inside the block: job ... { timeout ... }');
  });

  test('formatted as file:line:col: severity: message, the line with a caret, and the hint', () => {
    const source = 'job "a" {\n  timeout "90"\n  step "x" run="y"\n}\n';
    const [d] = parseWorkflowFile(source).diagnostics;
    expect(formatDiagnostic('.solstice/workflow.kdl', d, { source })).toBe(
      [
        '.solstice/workflow.kdl:2:11: error: duration "90" has no unit',
        '  |',
        '2 |   timeout "90"',
        '  |           ^^^^',
        '  hint: add a unit: "90s" or "90m"',
      ].join('\n'),
    );
  });

  test('known labels come from the caller', () => {
    const source = 'job "a" {\n  runs-on "debian-12"\n  step "x" run="y"\n}\n';
    expect(parseWorkflowFile(source).diagnostics.map((d) => d.code)).toEqual(['unknown-label']);
    expect(parseWorkflowFile(source, { knownLabels: ['local', 'debian-12'] }).diagnostics).toEqual([]);
  });

  test('labels of matrix instances are checked one by one', () => {
    const source =
      'job "a" {\n  runs-on "${matrix.os}"\n  matrix {\n    os "local" "debain-12"\n  }\n  step "x" run="y"\n}\n';
    const result = parseWorkflowFile(source, { knownLabels: ['local', 'debian-12'] });
    expect(result.ok).toBe(true);
    expect(result.diagnostics.map((d) => d.message)).toEqual([
      'runs-on label "debain-12" of job "a" is not in the image map (known labels: local, debian-12); did you mean "debian-12"?',
    ]);
  });

  test('a cycle reached through a job outside it names only the cycle', () => {
    const source = [
      'job "entry" {\n  needs "loop-a"\n  step "x" run="y"\n}',
      'job "loop-a" {\n  needs "loop-b"\n  step "x" run="y"\n}',
      'job "loop-b" {\n  needs "loop-a"\n  step "x" run="y"\n}',
    ].join('\n');
    expect(parseWorkflowFile(source).diagnostics.map((d) => `${d.line}:${d.column} ${d.message}`)).toEqual([
      '6:9 dependency cycle: loop-a -> loop-b -> loop-a',
    ]);
  });
});
