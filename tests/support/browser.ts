/**
 * Headless Chromium for browser tests: Debian's /usr/bin/chromium driven by playwright-core
 * (which cannot download a browser of its own here). `.ci/run` installs the package.
 */
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_PATH = process.env.SOLSTICE_TEST_CHROMIUM ?? '/usr/bin/chromium';

export async function launchBrowser(): Promise<Browser> {
  // playwright gives each launch a fresh temporary profile. The flags keep Chromium from calling
  // out to Google's hosts, which this closed network refuses (no test may leave 127.0.0.0/8).
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}
