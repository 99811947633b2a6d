/**
 * What a local-provider host tells its machines about the cache they share (the host's
 * provisioning/local.ts sets them, the bootstrap and the runner read them; a VM gets neither).
 */
import path from 'node:path';

/** The sha256 of the runner the host verified and wrote into the machine (no download then). */
export const RUNNER_SHA256_ENV = 'SOLSTICE_RUNNER_SHA256';
/** The folder of the host's bare repositories that checkout fetches into (runner/repo-cache.ts). */
export const GIT_CACHE_ENV = 'SOLSTICE_GIT_CACHE';
/** The V8 code cache file the runner's loader reads, or writes when it has none (runner-loader.ts). */
export const RUNNER_CODE_CACHE_ENV = 'SOLSTICE_RUNNER_CODE_CACHE';

/** The folder of the host's bare repositories inside its host cache folder: its machines' GIT_CACHE_ENV. */
export function hostGitCacheDir(hostCacheDir: string): string {
  return path.join(hostCacheDir, 'git');
}
