/**
 * The runner bundle, cached on the host by its sha256, for the local provider: a machine on
 * this host gets the verified bundle written into its folder instead of downloading it itself
 * (a `curl` per job). The runner server names its bundle by hash (ETag `"sha256-<hex>"`), so
 * one conditional GET tells whether a cached copy is the current one; the copy is hashed again
 * before every use, so a cache file changed on disk is fetched anew, never run.
 *
 * Anything going wrong here (the server down, a bundle without an ETag) only means the machine
 * downloads the runner itself, as a VM does; it never fails a create.
 */
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

const ETAG = /^"sha256-([0-9a-f]{64})"$/;
/** The cached bundles offered to the server; older ones are only kept, not asked about. */
const OFFERED = 4;
const FETCH_TIMEOUT_MS = 10_000;

export interface VerifiedRunner {
  sha256: string;
  body: Buffer;
}

function sha256(body: Buffer): string {
  return createHash('sha256').update(body).digest('hex');
}

export class RunnerCache {
  /** The bundles known to be in the cache, newest last (by what this process saw). */
  private known: string[] = [];
  private scanned = false;

  constructor(
    private readonly dir: string,
    private readonly runnerUrl: string,
  ) {}

  /** Where the runner's loader keeps the V8 code cache of bundle `hash` on Node `nodeVersion`. */
  codeCacheFile(hash: string, nodeVersion: string): string {
    return path.join(this.dir, `runner-${hash}-node-${nodeVersion}.v8cache`);
  }

  private fileOf(hash: string): string {
    return path.join(this.dir, `runner-${hash}.js`);
  }

  private async scan(): Promise<void> {
    if (this.scanned) return;
    this.scanned = true;
    const entries = await fs.readdir(this.dir).catch(() => [] as string[]);
    const found = entries
      .map((e) => /^runner-([0-9a-f]{64})\.js$/.exec(e)?.[1])
      .filter((h) => h !== undefined);
    this.known = [...new Set([...found, ...this.known])];
  }

  /** The cached bundle of `hash` if its bytes still hash to it; else it is removed. */
  private async readVerified(hash: string): Promise<Buffer | undefined> {
    const body = await fs.readFile(this.fileOf(hash)).catch(() => undefined);
    if (body && sha256(body) === hash) return body;
    this.known = this.known.filter((h) => h !== hash);
    await fs.rm(this.fileOf(hash), { force: true });
    return undefined;
  }

  /** The current runner, verified; undefined when it cannot be had (the machine downloads it). */
  async current(): Promise<VerifiedRunner | undefined> {
    try {
      await this.scan();
      const offered = this.known.slice(-OFFERED);
      const res = await this.get(offered);
      const hash = ETAG.exec(res.headers.get('etag') ?? '')?.[1];
      if (!hash) return undefined;
      if (res.status === 304 && offered.includes(hash)) {
        const cached = await this.readVerified(hash);
        if (cached) return { sha256: hash, body: cached };
        // Changed on disk since: fetched whole below.
        return this.store(await this.get([]));
      }
      return this.store(res);
    } catch {
      return undefined;
    }
  }

  private async get(offered: string[]): Promise<Response> {
    const headers: Record<string, string> = {};
    if (offered.length > 0) headers['If-None-Match'] = offered.map((h) => `"sha256-${h}"`).join(', ');
    return fetch(this.runnerUrl, { headers, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  }

  private async store(res: Response): Promise<VerifiedRunner | undefined> {
    const hash = ETAG.exec(res.headers.get('etag') ?? '')?.[1];
    if (res.status !== 200 || !hash) return undefined;
    const body = Buffer.from(await res.arrayBuffer());
    // A transfer cut short or a server lying about its bundle: not cached, not used.
    if (sha256(body) !== hash) return undefined;
    await fs.mkdir(this.dir, { recursive: true });
    // Machines of other workers on this host may read it at once: only a whole file is renamed in.
    const tmp = path.join(this.dir, `.runner-${randomUUID()}.tmp`);
    await fs.writeFile(tmp, body, { mode: 0o644 });
    await fs.rename(tmp, this.fileOf(hash));
    this.known = [...this.known.filter((h) => h !== hash), hash];
    return { sha256: hash, body };
  }
}
