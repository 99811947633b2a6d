/** Real git repositories in temp folders, for jobs to clone. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface TestRepo {
  dir: string;
  sha: string;
}

export function makeRepo(files: Record<string, string>): TestRepo {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-repo-'));
  const git = (...args: string[]) =>
    execFileSync('git', args, {
      cwd: dir,
      env: {
        ...process.env,
        GIT_AUTHOR_NAME: 't',
        GIT_AUTHOR_EMAIL: 't@example.invalid',
        GIT_COMMITTER_NAME: 't',
        GIT_COMMITTER_EMAIL: 't@example.invalid',
      },
    })
      .toString()
      .trim();
  git('init', '-q', '-b', 'main');
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), content, { mode: name.endsWith('.sh') ? 0o755 : 0o644 });
  }
  git('add', '-A');
  git('commit', '-q', '--allow-empty', '-m', 'test');
  return { dir, sha: git('rev-parse', 'HEAD') };
}

export function jobRepo(script: string): TestRepo {
  return makeRepo({ '.solstice/job.sh': `#!/bin/sh\n${script}\n` });
}
