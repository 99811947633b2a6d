/** Whether the CLI talks to the API: loaded by every command that has a remote path, so it imports nothing heavy. */
import { SETTINGS, type Config } from '../platform/config';
import { ConfigError } from '../platform/errors';

export function remoteMode(cfg: Pick<Config, 'apiUrl' | 'apiToken'>): boolean {
  if (cfg.apiUrl && cfg.apiToken) return true;
  if (cfg.apiUrl || cfg.apiToken)
    throw new ConfigError(
      `${cfg.apiUrl ? SETTINGS.apiUrl.env : SETTINGS.apiToken.env} is set without ${cfg.apiUrl ? SETTINGS.apiToken.env : SETTINGS.apiUrl.env}`,
      `set both to use the API, or neither to work directly on the database and Temporal`,
    );
  return false;
}
