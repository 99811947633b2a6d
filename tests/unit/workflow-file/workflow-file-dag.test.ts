/** The job graph, durations, suggestions, matrix expansion and `when` matching. */
import {
  didYouMean,
  editDistance,
  expandJob,
  formatDuration,
  jobGraph,
  parseWorkflowDuration,
  parseWorkflowFile,
  transitiveDependents,
  whenMatches,
} from '../../../workflow-file';

const jobs = (spec: Record<string, string[]>) => Object.entries(spec).map(([id, needs]) => ({ id, needs }));

describe('jobGraph', () => {
  test('a diamond runs in three stages', () => {
    const g = jobGraph(jobs({ a: [], b: ['a'], c: ['a'], d: ['b', 'c'] }));
    expect(g.stages).toEqual([['a'], ['b', 'c'], ['d']]);
    expect(g.order).toEqual(['a', 'b', 'c', 'd']);
    expect(g.dependents).toEqual({ a: ['b', 'c'], b: ['d'], c: ['d'], d: [] });
    expect(g.cycles).toEqual([]);
  });

  test('order respects needs written before the job they name; ties stay in file order', () => {
    const g = jobGraph(jobs({ deploy: ['test'], test: ['build'], lint: [], build: [] }));
    expect(g.stages).toEqual([['lint', 'build'], ['test'], ['deploy']]);
  });

  test('a job goes in the first stage after all its needs', () => {
    const g = jobGraph(jobs({ a: [], b: ['a'], c: ['b'], d: ['a'] }));
    expect(g.stages).toEqual([['a'], ['b', 'd'], ['c']]);
  });

  test('cycles are named, each once, starting at their first job in file order', () => {
    const g = jobGraph(jobs({ x: [], a: ['c'], b: ['a'], c: ['b', 'x'], s: ['s'], after: ['a'] }));
    expect(g.cycles).toEqual([
      ['a', 'c', 'b', 'a'],
      ['s', 's'],
    ]);
    expect(g.order).toEqual(['x']);
  });

  test('the shortest way round is named when a component has several cycles', () => {
    const g = jobGraph(jobs({ a: ['b', 'c'], b: ['c'], c: ['a'] }));
    expect(g.cycles).toEqual([['a', 'c', 'a']]);
  });

  test('deep chains do not overflow the stack', () => {
    const spec: Record<string, string[]> = { j0: ['j4999'] };
    for (let i = 1; i < 5000; i++) spec[`j${i}`] = [`j${i - 1}`];
    expect(jobGraph(jobs(spec)).cycles[0]).toHaveLength(5001);
  });

  test('transitive dependents are what a failure skips', () => {
    const g = jobGraph(jobs({ a: [], b: ['a'], c: ['a'], d: ['b', 'c'], e: [] }));
    expect(transitiveDependents(g, 'b')).toEqual(['d']);
    expect(transitiveDependents(g, 'a')).toEqual(['b', 'c', 'd']);
    expect(transitiveDependents(g, 'e')).toEqual([]);
    expect(transitiveDependents(g, 'constructor')).toEqual([]);
    expect(jobGraph(jobs({ ['__proto__']: [], constructor: ['__proto__'] })).order).toEqual([
      '__proto__',
      'constructor',
    ]);
  });
});

describe('durations', () => {
  test.each([
    ['90s', 90_000],
    ['15m', 900_000],
    ['1h30m', 5_400_000],
    ['500ms', 500],
    ['2d', 172_800_000],
    [' 7d ', 604_800_000],
  ])('%s', (raw, ms) => {
    expect(parseWorkflowDuration(raw)).toEqual({ ok: true, ms });
  });

  test.each(['', '30', '5w', '0m', '1h1h', '1m1h', '8d', '1.5h', '-1m', 'm', '1h 30m'])(
    'rejects "%s"',
    (raw) => {
      expect(parseWorkflowDuration(raw).ok).toBe(false);
    },
  );

  test('formats back', () => {
    expect(formatDuration(5_400_000)).toBe('1h30m');
    expect(formatDuration(90_500)).toBe('1m30s500ms');
  });
});

describe('did you mean', () => {
  test('edit distance counts transpositions as one edit', () => {
    expect(editDistance('needs', 'neesd')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  test('suggests close names and known aliases, nothing for far ones', () => {
    const names = ['runs-on', 'needs', 'timeout', 'step'];
    expect(didYouMean('runs_on', names)).toBe('runs-on');
    expect(didYouMean('RUNS-ON', names)).toBe('runs-on');
    expect(didYouMean('nedds', names)).toBe('needs');
    expect(didYouMean('steps', names)).toBe('step');
    expect(didYouMean('depends-on', names, { 'depends-on': 'needs' })).toBe('needs');
    expect(didYouMean('frobnicate', names)).toBeUndefined();
    expect(didYouMean('x', names)).toBeUndefined();
  });
});

describe('matrix and when', () => {
  test('a matrix job expands to one instance per combination', () => {
    const { workflow } = parseWorkflowFile(
      'job "t" {\n  runs-on "${matrix.os}"\n  env X="1"\n  matrix {\n    os "local" "debian-12"\n    node-version 18 20\n  }\n  step "s" run="x"\n}\n',
      { knownLabels: ['local', 'debian-12'] },
    );
    const instances = expandJob(workflow!.jobs[0]);
    expect(instances.map((i) => [i.id, i.runsOn])).toEqual([
      ['t[os=local,node-version=18]', 'local'],
      ['t[os=local,node-version=20]', 'local'],
      ['t[os=debian-12,node-version=18]', 'debian-12'],
      ['t[os=debian-12,node-version=20]', 'debian-12'],
    ]);
    expect(instances[1].env).toEqual({ X: '1', MATRIX_OS: 'local', MATRIX_NODE_VERSION: '20' });
  });

  test('a plain job is one instance', () => {
    const job = { id: 'j', runsOn: 'local', needs: [], env: { A: 'b' }, steps: [], artifacts: [], when: {} };
    expect(expandJob(job)).toEqual([{ id: 'j', jobId: 'j', values: {}, runsOn: 'local', env: { A: 'b' } }]);
  });

  test('when matches events and branch globs', () => {
    const when = { events: ['push' as const, 'tag' as const], branches: ['main', 'release/*', 'feature/**'] };
    expect(whenMatches(when, { event: 'push', branch: 'main' })).toBe(true);
    expect(whenMatches(when, { event: 'push', branch: 'release/1.2' })).toBe(true);
    expect(whenMatches(when, { event: 'push', branch: 'release/1.2/hotfix' })).toBe(false);
    expect(whenMatches(when, { event: 'push', branch: 'feature/a/b' })).toBe(true);
    expect(whenMatches(when, { event: 'push', branch: 'mainline' })).toBe(false);
    expect(whenMatches(when, { event: 'pull_request', branch: 'main' })).toBe(false);
    expect(whenMatches(when, { event: 'tag' })).toBe(true);
    expect(whenMatches({}, { event: 'manual' })).toBe(true);
    expect(whenMatches({ branches: ['a.b'] }, { event: 'push', branch: 'axb' })).toBe(false);
  });
});
