#!/usr/bin/env node
/**
 * Bundles the in-VM runner (runner/main.ts with @grpc/grpc-js, proto-loader, yaml and the
 * runner.v1 protocol descriptor) into ONE self-contained file, dist/runner/runner.js, that a
 * machine downloads from SOLSTICE_RUNNER_URL and runs with the guest's Node (Debian's 18.x):
 * platform node, target node18, a shebang, mode 0755.
 *
 * Then it smoke-tests the result the way a VM runs it: copied alone into an empty temporary
 * folder (no node_modules anywhere up the tree) and started with `--version`.
 *
 * Usage: node scripts/bundle-runner.mjs [--outfile path] [--no-check]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const outIdx = args.indexOf('--outfile');
const outfile = outIdx >= 0 ? path.resolve(args[outIdx + 1]) : path.join(root, 'dist', 'runner', 'runner.js');
const check = !args.includes('--no-check');

// The runner imports the generated protocol descriptor; produce it if `npm run gen` never ran.
if (!existsSync(path.join(root, 'generated', 'proto', 'runner-descriptor.ts'))) {
  execFileSync(process.execPath, [path.join(root, 'scripts', 'gen-proto-types.mjs')], { stdio: 'inherit' });
}

const result = await build({
  absWorkingDir: root,
  entryPoints: [path.join(root, 'runner', 'main.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node18',
  format: 'cjs',
  banner: { js: '#!/usr/bin/env node' },
  // Readable stack traces on a serial console matter more than a few hundred KiB.
  minify: false,
  keepNames: true,
  legalComments: 'eof',
  logLevel: 'warning',
  metafile: true,
  // Written below by rename, so the runner server never serves a half-written file.
  write: false,
});
const [output] = result.outputFiles;
mkdirSync(path.dirname(outfile), { recursive: true });
const tmp = `${outfile}.${process.pid}.tmp`;
writeFileSync(tmp, output.contents, { mode: 0o755 });
chmodSync(tmp, 0o755); // mode above is masked by the umask
renameSync(tmp, outfile);

const size = statSync(outfile).size;
const inputs = Object.keys(result.metafile.inputs).length;
console.log(`bundled ${path.relative(root, outfile)} (${(size / 1024).toFixed(0)} KiB from ${inputs} files)`);

if (check) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'solstice-runner-check-'));
  try {
    const copy = path.join(dir, 'runner.js');
    copyFileSync(outfile, copy);
    const run = spawnSync(process.execPath, [copy, '--version'], { cwd: dir, encoding: 'utf8' });
    if (run.status !== 0 || !/^\d+\.\d+\.\d+/.test(run.stdout)) {
      console.error(`the bundle does not run on its own:\n${run.stdout}${run.stderr}`);
      process.exit(1);
    }
    console.log(`checked: runs standalone (version ${run.stdout.trim()})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
