/** Every construct of the workflow language, parsed into the typed model. */
import fs from 'node:fs';
import path from 'node:path';
import { parseWorkflowFile, type WorkflowFile } from '../../../workflow-file';

const fixture = (name: string) =>
  fs.readFileSync(path.join(__dirname, '../../fixtures/workflow-file', name), 'utf8');

function parseOk(source: string, knownLabels?: string[]): WorkflowFile {
  const result = parseWorkflowFile(source, { knownLabels });
  expect(result.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  expect(result.ok).toBe(true);
  return result.workflow!;
}

describe('workflow file constructs', () => {
  test('cancel-superseded: absent means undefined (yes), #false opts out, anything else is an error with a location', () => {
    const job = 'job "a" { step "x" run="true" }\n';
    expect(parseOk(job).cancelSuperseded).toBeUndefined();
    expect(parseOk(`cancel-superseded #false\n${job}`).cancelSuperseded).toBe(false);
    expect(parseOk(`cancel-superseded #true\n${job}`).cancelSuperseded).toBe(true);
    const bad = (src: string) => parseWorkflowFile(src).diagnostics.map((d) => [d.code, d.line, d.column]);
    expect(bad(`cancel-superseded "no"\n${job}`)).toEqual([['bad-type', 1, 19]]);
    expect(bad(`cancel-superseded\n${job}`)).toEqual([['missing-argument', 1, 1]]);
    expect(bad(`cancel-superseded #false\ncancel-superseded #true\n${job}`)).toEqual([
      ['duplicate-node', 2, 1],
    ]);
    expect(parseWorkflowFile(`cancel-supersede #false\n${job}`).diagnostics[0]).toMatchObject({
      code: 'unknown-node',
      suggestion: 'cancel-superseded',
    });
  });

  test('a minimal job gets the defaults', () => {
    expect(parseOk(fixture('minimal.kdl'))).toEqual({
      jobs: [
        {
          id: 'build',
          runsOn: 'local',
          needs: [],
          env: {},
          steps: [{ name: 'make', run: 'make', continueOnError: false }],
          artifacts: [],
          when: {},
        },
      ],
    });
  });

  test('the kitchen sink: every node and property', () => {
    const result = parseWorkflowFile(fixture('kitchen-sink.kdl'), { knownLabels: ['local', 'debian-12'] });
    expect(result.diagnostics).toEqual([]);
    expect(result.workflow).toEqual({
      name: 'kitchen sink',
      jobs: [
        {
          id: 'prepare',
          runsOn: 'local',
          needs: [],
          timeoutMs: 86_400_000 + 2 * 3_600_000 + 3 * 60_000 + 4_000 + 500,
          env: { CI: 'true', GREETING: 'hello world', EMPTY: '', STAGE: 'prepare' },
          steps: [
            { name: 'hello', run: 'echo $GREETING', continueOnError: false },
            {
              name: 'multi',
              run: 'set -eu\n./one.sh\n./two.sh',
              workingDirectory: 'tools/scripts',
              continueOnError: false,
            },
            { name: 'flaky', run: './flaky.sh', continueOnError: true },
            { name: 'strict', run: './strict.sh', continueOnError: false },
          ],
          artifacts: ['out/report.html', 'logs/**/*.log', 'build.txt'],
          when: {},
        },
        {
          id: 'fan.out_1',
          runsOn: '${matrix.os}',
          needs: ['prepare'],
          env: { CI: 'true', GREETING: 'hello world', EMPTY: '' },
          steps: [{ name: 'py', run: 'python$MATRIX_PYTHON -V', continueOnError: false }],
          artifacts: [],
          when: {},
          matrix: {
            axes: [
              { name: 'os', values: ['local', 'debian-12'] },
              { name: 'python', values: ['3.11', '3.12'] },
            ],
          },
        },
        {
          id: 'gated',
          runsOn: 'local',
          needs: ['prepare', 'fan.out_1'],
          env: { CI: 'true', GREETING: 'hello world', EMPTY: '' },
          steps: [{ name: 'ship', run: 'echo "raw \\string"', continueOnError: false }],
          artifacts: [],
          when: { events: ['push', 'tag'], branches: ['main', 'release/**'] },
        },
        {
          id: 'manual-only',
          runsOn: 'local',
          needs: [],
          env: { CI: 'true', GREETING: 'hello world', EMPTY: '' },
          steps: [
            { name: 'noop', run: 'true', continueOnError: false },
            { name: 'also', run: 'true', continueOnError: false },
          ],
          artifacts: [],
          when: { events: ['manual'] },
        },
      ],
    });
  });

  test('job env wins over workflow env', () => {
    const wf = parseOk('env A="top" B="top"\njob "j" {\n  env B="job"\n  step "s" run="env"\n}\n');
    expect(wf.jobs[0].env).toEqual({ A: 'top', B: 'job' });
  });

  test('top-level nodes may come in any order', () => {
    const wf = parseOk('job "j" {\n  step "s" run="x"\n}\nenv LATE="yes"\nname "late"\n');
    expect(wf.name).toBe('late');
    expect(wf.jobs[0].env).toEqual({ LATE: 'yes' });
  });

  test('steps keep their order; multi-line scripts lose the common indentation', () => {
    const wf = parseOk(
      'job "j" {\n  step "one" run="1"\n  step "two" run="""\n      a\n        b\n      """\n  step "three" run="3"\n}\n',
    );
    expect(wf.jobs[0].steps.map((s) => [s.name, s.run])).toEqual([
      ['one', '1'],
      ['two', 'a\n  b'],
      ['three', '3'],
    ]);
  });

  test('slashdash comments remove nodes, properties and blocks', () => {
    const wf = parseOk(
      'job "j" {\n  /-runs-on "elsewhere"\n  step "s" run="x" /-continue-on-error=#true\n  /-step "gone" run="y"\n}\n/-job "off" {\n  step "s" run="x"\n}\n',
    );
    expect(wf.jobs).toHaveLength(1);
    expect(wf.jobs[0].runsOn).toBe('local');
    expect(wf.jobs[0].steps).toEqual([{ name: 's', run: 'x', continueOnError: false }]);
  });

  test('raw strings and escapes', () => {
    const wf = parseOk('job "j" {\n  step "s" run=#"printf "%s\\n" x"#\n  step "t" run="tab\\there"\n}\n');
    expect(wf.jobs[0].steps.map((s) => s.run)).toEqual(['printf "%s\\n" x', 'tab\there']);
  });

  test('needs may repeat and list several jobs; order is kept', () => {
    const wf = parseOk(
      ['a', 'b', 'c'].map((id) => `job "${id}" {\n  step "s" run="x"\n}`).join('\n') +
        '\njob "d" {\n  needs "c"\n  needs "a" "b"\n  step "s" run="x"\n}\n',
    );
    expect(wf.jobs[3].needs).toEqual(['c', 'a', 'b']);
  });

  test('every event is accepted', () => {
    const wf = parseOk(
      'job "j" {\n  when {\n    events "push" "pull_request" "tag" "manual"\n  }\n  step "s" run="x"\n}\n',
    );
    expect(wf.jobs[0].when).toEqual({ events: ['push', 'pull_request', 'tag', 'manual'] });
  });

  test('matrix numbers keep how they were written', () => {
    const wf = parseOk('job "j" {\n  matrix {\n    v 1.10 2 0x10\n  }\n  step "s" run="x"\n}\n');
    expect(wf.jobs[0].matrix).toEqual({ axes: [{ name: 'v', values: ['1.10', '2', '0x10'] }] });
  });

  test('a KDL v1 file is read too, with a warning', () => {
    const result = parseWorkflowFile(fixture('v1.kdl'));
    expect(result.ok).toBe(true);
    expect(result.diagnostics.map((d) => d.code)).toEqual(['kdl-v1']);
    expect(result.workflow!.jobs[0].steps).toEqual([
      { name: 'flaky', run: 'make', continueOnError: true },
      { name: 'raw', run: 'echo \\n', continueOnError: false },
    ]);
  });

  test('CRLF line endings and a byte order mark', () => {
    const wf = parseOk('\ufeffjob "j" {\r\n  step "s" run="x"\r\n}\r\n');
    expect(wf.jobs[0].id).toBe('j');
  });

  test('names that are also Object.prototype keys stay plain data', () => {
    const wf = parseOk('env __proto__="x" constructor="y"\njob "constructor" {\n  step "s" run="x"\n}\n');
    expect(Object.keys(wf.jobs[0].env)).toEqual(['__proto__', 'constructor']);
    expect(Object.getPrototypeOf(wf.jobs[0].env)).toBe(Object.prototype);
    expect(JSON.parse(JSON.stringify(wf.jobs[0].env))).toEqual(wf.jobs[0].env);
    const bad = parseWorkflowFile(
      'job "j" {\n  runs-on "${matrix.constructor}"\n  matrix {\n    os "local"\n  }\n  step "s" run="x"\n}\n',
    );
    expect(bad.diagnostics.map((d) => d.code)).toEqual(['matrix-reference']);
  });

  test('the result is plain JSON data', () => {
    const wf = parseOk(fixture('pipeline.kdl'), ['local', 'debian-12']);
    expect(JSON.parse(JSON.stringify(wf))).toEqual(wf);
  });
});
