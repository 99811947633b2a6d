/**
 * What `solstice enqueue` checks before it starts anything: the repository exists, the commit
 * exists in it, and that commit has something to run. System git only.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  ACTIONS_WORKFLOW_DIRS,
  JOB_DEFINITION_DIR,
  JOB_DEFINITION_PATHS,
  JOB_SCRIPT_PATH,
  type JobDefinitionPath,
} from '../model/job-definition-paths';
import { InputError } from '../platform/errors';
import { pickWorkflowFiles } from '../workflow-file/actions/plan';

const run = promisify(execFile);

async function git(cwd: string, args: string[]): Promise<string> {
  const { stdout } = await run('git', args, { cwd, maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

export interface ResolvedCommit {
  /** What the machine clones: an absolute path for local repositories. */
  repoUrl: string;
  commitSha: string;
  ref?: string;
  /** What runs: a Solstice file, or else the Actions workflow files. */
  definition: JobDefinitionPath | string[];
  /** Uncommitted changes that this job will not see. */
  dirty: boolean;
}

export async function resolveLocalCommit(repo: string, rev: string): Promise<ResolvedCommit> {
  const dir = path.resolve(repo);
  if (!fs.existsSync(dir)) throw new InputError(`repository ${dir} does not exist`);
  let top: string;
  try {
    top = await git(dir, ['rev-parse', '--show-toplevel']);
  } catch {
    throw new InputError(
      `${dir} is not a git repository`,
      'Pass --repo with a git checkout, or run from inside one.',
    );
  }
  let sha: string;
  try {
    sha = await git(top, ['rev-parse', '--verify', '--quiet', `${rev}^{commit}`]);
  } catch {
    throw new InputError(
      `commit "${rev}" does not exist in ${top}`,
      'Check the spelling, or fetch it first (git fetch); `git log --oneline` lists commits.',
    );
  }
  const tree = (await git(top, ['ls-tree', '-r', '--name-only', sha, `${JOB_DEFINITION_DIR}/`])).split('\n');
  let definition: JobDefinitionPath | string[] | undefined = JOB_DEFINITION_PATHS.find((f) =>
    tree.includes(f),
  );
  if (!definition) {
    const listed = await git(top, [
      'ls-tree',
      '--name-only',
      sha,
      '--',
      ...ACTIONS_WORKFLOW_DIRS.map((d) => `${d}/`),
    ]);
    const actions = pickWorkflowFiles(listed.split('\n').filter((l) => l !== ''));
    if (actions.length > 0) definition = actions;
  }
  if (!definition) {
    throw new InputError(
      `commit ${sha.slice(0, 12)} in ${top} has neither ${JOB_DEFINITION_PATHS.join(' nor ')} nor workflows in ${ACTIONS_WORKFLOW_DIRS.join(', ')}`,
      `Add ${JOB_SCRIPT_PATH} (a shell script that runs your build and tests), commit it, and enqueue again.`,
    );
  }
  // HEAD: the branch checked out (none when detached); a branch or tag name: that ref, so
  // `--commit main` runs as on main; a sha: no ref.
  let ref: string | undefined;
  try {
    ref =
      rev === 'HEAD'
        ? await git(top, ['symbolic-ref', '--quiet', 'HEAD'])
        : await git(top, ['rev-parse', '--verify', '--quiet', '--symbolic-full-name', rev]);
  } catch {
    ref = undefined;
  }
  if (ref !== undefined && !/^refs\/(heads|tags)\//.test(ref)) ref = undefined;
  const dirty = (await git(top, ['status', '--porcelain', '--untracked-files=no'])).length > 0;
  return { repoUrl: top, commitSha: sha, ref, definition, dirty };
}
