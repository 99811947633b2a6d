/** Where `npm run build` puts the runner bundle, from the sources (ts-jest) or from dist/. */
import fs from 'node:fs';
import path from 'node:path';

export function runnerBundlePath(): string {
  const candidates = [
    path.resolve(__dirname, '..', 'runner', 'runner.js'),
    path.resolve(__dirname, '..', 'dist', 'runner', 'runner.js'),
  ];
  return candidates.find((p) => fs.existsSync(p)) ?? candidates[candidates.length - 1];
}
