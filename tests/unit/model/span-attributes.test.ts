import { repoAttribute } from '../../../model/span-attributes';

test('repository URLs lose credentials, query and fragment before they go into a span', () => {
  expect(repoAttribute('https://x-access-token:ghs_secret@github.com/o/r.git')).toBe(
    'https://github.com/o/r.git',
  );
  expect(repoAttribute('https://user@forge.example/o/r.git?token=abc#frag')).toBe(
    'https://forge.example/o/r.git',
  );
  expect(repoAttribute('git@github.com:o/r.git')).toBe('github.com:o/r.git');
  expect(repoAttribute('/tmp/repo')).toBe('/tmp/repo');
});
