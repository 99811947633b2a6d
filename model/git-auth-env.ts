/**
 * How a credential reaches git without a URL, an argument or a file: configuration entries in
 * git's environment, which neither error messages, spans nor the Temporal history show. Used by
 * planning (activities/commit-plan.ts) and the runner's checkout (runner/checkout.ts).
 */

/**
 * git's environment entries (GIT_CONFIG_COUNT/KEY_n/VALUE_n) that send `header` with requests
 * to the repository's own origin only (`http.<origin>/.extraHeader`), so a redirect to another
 * host does not carry it; appended to what the environment already configures.
 */
export function gitAuthEnv(env: NodeJS.ProcessEnv, repoUrl: string, header: string): NodeJS.ProcessEnv {
  let origin: string;
  try {
    const u = new URL(repoUrl);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') return env;
    origin = u.origin;
  } catch {
    return env; // not an http(s) URL: ssh and git:// carry no header
  }
  const n = Number(env.GIT_CONFIG_COUNT ?? '0') || 0;
  return {
    ...env,
    GIT_CONFIG_COUNT: String(n + 1),
    [`GIT_CONFIG_KEY_${n}`]: `http.${origin}/.extraHeader`,
    [`GIT_CONFIG_VALUE_${n}`]: header,
  };
}
