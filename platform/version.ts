/** Solstice's own version, from package.json, for --version and the worker's Temporal identity. */
import fs from 'node:fs';
import path from 'node:path';

let version: string | undefined;

/** package.json from dist/<folder> (built) or <folder>/ (sources, as tests load it). */
export function solsticeVersion(): string {
  if (version !== undefined) return version;
  const file = ['../package.json', '../../package.json']
    .map((p) => path.resolve(__dirname, p))
    .find((p) => fs.existsSync(p));
  version = file ? (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version : 'unknown';
  return version;
}

/**
 * The identity a worker polls Temporal with: pid, host id (not the hostname, which hosts in
 * containers or network namespaces may share) and version, so `solstice doctor` and the Web UI
 * show which host runs what, and a rolling upgrade's mix of versions is visible.
 */
export function workerIdentity(hostId: string): string {
  return `${process.pid}@${hostId} solstice/${solsticeVersion()}`;
}

/** The version in a worker identity made by workerIdentity, if it is one. */
export function versionOfIdentity(identity: string): string | undefined {
  return / solstice\/(\S+)$/.exec(identity)?.[1];
}
