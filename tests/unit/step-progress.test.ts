import { stepStarted } from '../../services/log-service/step-progress';

test("the runner's step-started lines are read from the system stream only", () => {
  expect(stepStarted('system', 'step 2/3 "run \\"tests\\"" started')).toEqual({
    index: 2,
    total: 3,
    name: 'run \\"tests\\"',
  });
  expect(stepStarted('system', 'step 1/1 "build" started in sub/dir')).toEqual({
    index: 1,
    total: 1,
    name: 'build',
  });
  expect(stepStarted('system', 'step 1/2 "build" skipped: the job is stopping')).toBeUndefined();
  // A job's own output that looks the same is not progress.
  expect(stepStarted('stdout', 'step 1/1 "build" started')).toBeUndefined();
});
