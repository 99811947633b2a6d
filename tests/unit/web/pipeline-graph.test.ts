/**
 * The pipeline graph: one box per job coloured by its state, an arrow per `needs` edge (from
 * the needed job, or its matrix frame, to the job), matrix cells framed together, and skipped
 * jobs saying why, with names from the workflow file escaped.
 */
import { badgeSvg, pipelineGraph } from '../../../web/pipelines/render';
import type { PipelineJobRecord } from '../../../storage/pipeline-store';

const job = (
  name: string,
  needs: string[],
  state: PipelineJobRecord['state'],
  extra: Partial<PipelineJobRecord> = {},
): PipelineJobRecord => ({ name, needs, state, jobId: null, message: null, position: 0, ...extra });

const JOBS: PipelineJobRecord[] = [
  job('build', [], 'success', { jobId: '11111111-1111-4111-8111-111111111111' }),
  job('test[node=20]', ['build'], 'failure', { jobId: '22222222-2222-4222-8222-222222222222' }),
  job('test[node=22]', ['build'], 'success', { jobId: '33333333-3333-4333-8333-333333333333' }),
  job('deploy', ['test'], 'skipped', { message: 'needs test, which failed' }),
  job('<lint>', [], 'running'),
];

const svg = pipelineGraph(JOBS);
const boxes = [...svg.matchAll(/<g class="job job-([a-z]+)" data-job="([^"]+)">/g)].map((m) => [m[2], m[1]]);
const arrows = [...svg.matchAll(/<path class="need" data-from="([^"]+)" data-to="([^"]+)"/g)].map((m) => [
  m[1],
  m[2],
]);

test('every job is a box with its state, linked to its job page when it ran', () => {
  expect(boxes).toEqual([
    ['build', 'success'],
    ['test[node=20]', 'failure'],
    ['test[node=22]', 'success'],
    ['deploy', 'skipped'],
    ['&#60;lint&#62;', 'running'],
  ]);
  expect(svg).toContain('<a href="/jobs/22222222-2222-4222-8222-222222222222">');
  expect(svg).not.toContain('<lint>');
  // Colours differ by state: success green, failure red.
  expect(svg).toMatch(/data-job="build">.*?fill="#1a7f37"/);
  expect(svg).toMatch(/data-job="test\[node=20\]">.*?fill="#cf222e"/);
});

test('needs are arrows, matrix cells are framed as one job, and a skipped job says why', () => {
  expect(arrows).toEqual([
    ['build', 'test'],
    ['test', 'deploy'],
  ]);
  expect(svg).toMatch(
    /<g class="matrix" data-job="test">.*data-job="test\[node=20\]".*data-job="test\[node=22\]".*<\/g><\/a><\/g>/,
  );
  expect(svg).toContain('needs test, which failed');
  // Columns follow needs: deploy sits right of test, which sits right of build.
  const x = (name: string) =>
    Number(
      new RegExp(`data-job="${name.replace(/[[\]]/g, '\\$&')}"><title>[^<]*</title><rect x="(\\d+)"`).exec(
        svg,
      )?.[1],
    );
  expect(x('build')).toBeLessThan(x('test[node=20]'));
  expect(x('test[node=20]')).toBeLessThan(x('deploy'));
  expect(x('test[node=20]')).toBe(x('test[node=22]'));
});

test('the badge names the state, and says unknown when there is none', () => {
  expect(badgeSvg('success')).toContain('>success</text>');
  expect(badgeSvg(undefined)).toContain('>unknown</text>');
  expect(badgeSvg('failure')).toContain('fill="#cf222e"');
});
