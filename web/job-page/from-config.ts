/**
 * The pages' access and buttons as the settings configure them: forge sign-in
 * (SOLSTICE_OAUTH_*), permissions asked of the forges that repositories live on, cached for
 * SOLSTICE_PERMISSION_CACHE, anonymous reading per SOLSTICE_ANONYMOUS_READ; cancel and rerun
 * through Temporal as the CLI does them.
 */
import type { Client } from '@temporalio/client';
import { ForgeBackedPermissions, type ForgeSite } from '../../access/forge-permissions';
import type { Config } from '../../platform/config';
import type { Logger } from '../../platform/logger';
import type { Db } from '../../storage/db';
import { PipelineStore } from '../../storage/pipeline-store';
import { SessionStore } from '../../storage/session-store';
import { signInProviders } from '../sign-in/providers';
import type { PipelineActions, WebAccess } from './server';

export function webAccessFromConfig(cfg: Config, db: Db, log: Logger): WebAccess {
  const providers = signInProviders(cfg);
  const sessions = new SessionStore(db);
  const sites: ForgeSite[] = providers.map((p) => ({ forge: p.forge, webUrl: p.webUrl, apiUrl: p.apiUrl }));
  const forge = new ForgeBackedPermissions({
    sites,
    userToken: (f, login) => sessions.userToken(f, login),
    cacheMs: cfg.permissionCacheMs,
    log,
  });
  return {
    sources: { forge, anonymousRead: cfg.anonymousRead },
    signIn: {
      providers,
      sessions,
      ...(cfg.publicUrl ? { publicUrl: cfg.publicUrl } : {}),
      sessionTtlMs: cfg.sessionTtlMs,
      log,
      onSignIn: (_f, login) => forge.forgetUser(login),
    },
  };
}

/** `client` may connect on first use: the pages show runs while Temporal is down, only the buttons need it. */
export function pipelineActions(
  client: Client | (() => Promise<Client>),
  cfg: Config,
  db: Db,
): PipelineActions {
  const pipelines = new PipelineStore(db);
  const temporal = typeof client === 'function' ? client : () => Promise.resolve(client);
  return {
    async cancel(workflowId) {
      await (await temporal()).workflow.getHandle(workflowId).cancel();
    },
    async rerun(p, failedOnly) {
      const { rerunPipeline } = await import('../../ingress/pipeline-start');
      return rerunPipeline(await temporal(), cfg, p, await pipelines.listJobs(p.id), { failedOnly });
    },
  };
}
