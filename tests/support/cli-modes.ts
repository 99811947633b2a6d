/**
 * The CLI's two modes for tests that must pass in both: `direct` (the database and Temporal,
 * as an operator on the host) and `remote` (SOLSTICE_API_URL and SOLSTICE_TOKEN only, against
 * the API served by a job page over the test's harness). In remote mode the database and
 * Temporal addresses point at closed ports, so a command that touched them would fail.
 */
import { apiServiceOptions } from '../../api/service';
import { createLogger } from '../../platform/logger';
import { FsBlobStore } from '../../storage/blob-store';
import { startJobPage, type RunningJobPage } from '../../web/job-page/server';
import { cliEnv } from './cli';
import type { Harness } from './harness';

export const CLI_MODES = ['direct', 'remote'] as const;
export type CliMode = (typeof CLI_MODES)[number];

export interface CliModes {
  env(mode: CliMode): NodeJS.ProcessEnv;
  /** How a test names a run: direct mode takes id prefixes, the API whole ids only. */
  ref(mode: CliMode, id: string): string;
}

/** Serves the API over the harness `harness()` returns, for the file's tests; call at top level after the harness. */
export function cliModesForFile(harness: () => Harness): CliModes {
  let page: RunningJobPage | undefined;
  let api: ReturnType<typeof apiServiceOptions> | undefined;
  let token = '';
  beforeAll(async () => {
    const h = harness();
    const log = createLogger('test');
    log.level = 'warn';
    api = apiServiceOptions(h.cfg, h.db);
    page = await startJobPage({
      addr: '127.0.0.1:0',
      jobs: h.jobs,
      blobs: new FsBlobStore(h.cfg.blobFsRoot),
      log,
      pollMs: 100,
      api,
    });
    token = (await api.tokens.create({ name: 'cli-tests', scope: 'write' })).token;
  });
  afterAll(async () => {
    await page?.close();
    await api?.close();
  });
  return {
    env: (mode) => {
      const direct = cliEnv(harness().cfg);
      if (mode === 'direct') return direct;
      return {
        ...direct,
        DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/not-used-in-remote-mode',
        TEMPORAL_ADDRESS: '127.0.0.1:1',
        SOLSTICE_API_URL: page!.url,
        SOLSTICE_TOKEN: token,
      };
    },
    ref: (mode, id) => (mode === 'direct' ? id.slice(0, 8) : id),
  };
}
