/**
 * The actions Solstice runs itself, without an action runtime: `actions/checkout` (the commit is
 * already checked out; `path` and `fetch-depth` are honoured) and `actions/upload-artifact`
 * (Solstice artifacts). Any other `uses:` is refused with what to do instead.
 */
export class UnsupportedAction extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

export type BuiltIn = { kind: 'run'; name: string; run: string } | { kind: 'artifacts'; paths: string[] };

/** `actions/checkout` from `actions/checkout@v4`, `https://code.forgejo.org/actions/checkout@v4`, .... */
function actionName(uses: string): string {
  const noVersion = uses.split('@')[0];
  return noVersion.replace(/^https?:\/\/[^/]+\//, '').toLowerCase();
}

/** A shell word in single quotes. */
function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function builtInStep(uses: string, withArgs: Record<string, string>): BuiltIn {
  const name = actionName(uses);
  if (name === 'actions/checkout' || name === 'forgejo/checkout') return checkout(uses, withArgs);
  if (name === 'actions/upload-artifact' || name === 'forgejo/upload-artifact') {
    const paths = (withArgs.path ?? '')
      .split('\n')
      .map((p) => p.trim())
      .filter((p) => p !== '' && !p.startsWith('#'));
    if (paths.length === 0) throw new UnsupportedAction(`${uses} needs a path`, 'give with: path: <glob>');
    if (paths.some((p) => p.startsWith('!')))
      throw new UnsupportedAction(
        `${uses}: exclusion patterns (!) are not supported yet`,
        'list the files to keep',
      );
    // A folder means everything in it, as upload-artifact does.
    return { kind: 'artifacts', paths: paths.map((p) => (p.endsWith('/') ? `${p}**` : p)) };
  }
  if (uses.startsWith('docker://') || uses.startsWith('./'))
    throw new UnsupportedAction(
      `uses: ${uses} is not supported: Solstice does not run ${uses.startsWith('./') ? 'local' : 'Docker'} actions yet`,
      'replace the step with a run: step that does the same, or wait for action support',
    );
  throw new UnsupportedAction(
    `uses: ${uses} is not supported: Solstice runs only actions/checkout and actions/upload-artifact itself`,
    'replace the step with a run: step that does the same (e.g. install the tool with the package manager), or wait for action support',
  );
}

function checkout(uses: string, w: Record<string, string>): BuiltIn {
  for (const key of ['repository', 'ref', 'submodules', 'lfs', 'sparse-checkout']) {
    // `ref` naming the commit itself, or the event's ref, is what is checked out anyway.
    if (key === 'ref' && (w.ref === undefined || /^\$\{\{\s*github\.(sha|ref)\s*\}\}$/.test(w.ref))) continue;
    if (w[key] !== undefined && w[key] !== '' && w[key] !== 'false')
      throw new UnsupportedAction(
        `${uses}: with ${key} is not supported yet: Solstice checks out the pipeline's own commit`,
        'fetch what else you need with git in a run: step',
      );
  }
  const lines = ['# actions/checkout: the commit is already checked out in $SOLSTICE_WORKDIR'];
  if (w['fetch-depth'] === '0')
    lines.push(
      'if [ -f "$SOLSTICE_WORKDIR/.git/shallow" ]; then git -C "$SOLSTICE_WORKDIR" fetch -q --unshallow || true; fi',
    );
  if (w.path && w.path !== '.')
    lines.push(`git clone -q --no-hardlinks "$SOLSTICE_WORKDIR" ${quote(w.path)}`);
  return { kind: 'run', name: `checkout${w.path ? ` into ${w.path}` : ''}`, run: lines.join('\n') };
}
