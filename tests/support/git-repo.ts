/** Real git repositories in temp folders, for jobs to clone. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface TestRepo {
  dir: string;
  sha: string;
}

/** The author and committer of every commit a test makes. */
export const TEST_GIT_IDENTITY = {
  GIT_AUTHOR_NAME: 't',
  GIT_AUTHOR_EMAIL: 't@example.invalid',
  GIT_COMMITTER_NAME: 't',
  GIT_COMMITTER_EMAIL: 't@example.invalid',
} as const;

function gitIn(dir: string, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd: dir,
    env: { ...process.env, ...TEST_GIT_IDENTITY },
  })
    .toString()
    .trim();
}

export function makeRepo(files: Record<string, string>): TestRepo {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-repo-'));
  gitIn(dir, 'init', '-q', '-b', 'main');
  return { dir, sha: commitFiles(dir, files) };
}

/** Writes `files` into the repository and commits them on its branch; returns the new commit. */
export function commitFiles(dir: string, files: Record<string, string>): string {
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), content, { mode: name.endsWith('.sh') ? 0o755 : 0o644 });
  }
  gitIn(dir, 'add', '-A');
  gitIn(dir, 'commit', '-q', '--allow-empty', '-m', 'test');
  return gitIn(dir, 'rev-parse', 'HEAD');
}

export function jobRepo(script: string): TestRepo {
  return makeRepo({ '.solstice/job.sh': `#!/bin/sh\n${script}\n` });
}
