// The real browser the browser tests drive: Debian's Chromium (playwright-core never downloads one).
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

// Headless, and nothing that reaches for the network on its own (this machine's is closed).
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** Starts Chromium, or fails with one message saying what to install. */
export function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`the browser tests need Chromium at ${CHROMIUM} (Debian: apt-get install chromium)`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS });
}
