/** The job page folds `::group::` sections and lists `::error` / `::warning` annotations. */
import { renderJobPage } from '../../../web/job-page/render';
import type { JobRecord, LogLineRecord } from '../../../storage/job-store';

const job: JobRecord = {
  id: '3f2a9c00-0000-4000-8000-000000000000',
  workflowId: 'w',
  source: 'manual',
  repoUrl: '/r',
  commitSha: 'a'.repeat(40),
  ref: null,
  label: 'local',
  state: 'failure',
  exitCode: 1,
  message: null,
  attempt: 1,
  createdAt: new Date(0),
  startedAt: null,
  finishedAt: null,
  logExpiredAt: null,
  artifactsExpiredAt: null,
};

function page(texts: [string, string][]): string {
  const lines: LogLineRecord[] = texts.map(([stream, text], i) => ({
    seq: i + 1,
    stream,
    text,
    time: new Date(0),
  }));
  return renderJobPage({
    job,
    steps: { steps: [], lost: [] },
    artifacts: [],
    lines,
    lastSeq: lines.length,
    window: 1000,
    live: false,
  });
}

test('a group is a closed <details> whose summary is the ::group:: line', () => {
  const html = page([
    ['stdout', 'before'],
    ['stdout', '::group::Install deps'],
    ['stdout', 'inside'],
    ['stdout', '::endgroup::'],
    ['stdout', 'after'],
  ]);
  expect(html).toMatch(
    /<details class="group"><summary><div[^>]*id="L2"[^>]*>.*Install deps.*<\/summary><div[^>]*id="L3".*inside.*::endgroup::.*<\/details><div[^>]*id="L5"/,
  );
  expect(html).not.toContain('<details class="group" open');
});

test('an unclosed group ends with the page; an ::endgroup:: without a group is a plain line', () => {
  const html = page([
    ['stdout', '::endgroup::'],
    ['stdout', '::group::never closed'],
    ['stdout', 'x'],
  ]);
  expect(html.match(/<details/g)).toHaveLength(1);
  expect(html.match(/<\/details>/g)).toHaveLength(1);
});

test('::error and ::warning lines are annotations with file and line, linked to the log line, escaped', () => {
  const html = page([
    ['stdout', 'compiling'],
    ['stderr', '::error file=src/main.c,line=12::expected ; before <b>'],
    ['stdout', '::warning::deprecated'],
    ['system', '::error::not from the step'],
  ]);
  expect(html).toContain(
    '<h2>Annotations</h2><ul id="annotations"><li class="ann-error"><a href="#L2">error</a> src/main.c:12: expected ; before &#60;b&#62;</li><li class="ann-warning"><a href="#L3">warning</a>: deprecated</li></ul>',
  );
  expect(html.indexOf('id="annotations"')).toBeLessThan(html.indexOf('<h2>Log</h2>'));
  expect(html).not.toContain('not from the step</li>');
});

test('a log without workflow commands has no annotations and no groups', () => {
  const html = page([['stdout', 'hello']]);
  expect(html).not.toContain('Annotations');
  expect(html).not.toContain('<details');
});
