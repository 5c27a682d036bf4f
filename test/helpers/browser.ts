import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = process.env.EDGEFLEET_CHROMIUM ?? '/usr/bin/chromium';
export const SCREENSHOT_DIR = join(import.meta.dirname, '..', '..', 'test-artifacts', 'screenshots');

/** Why the browser tests cannot run here, or null when they can. */
export function browserMissing(): string | null {
  return existsSync(CHROMIUM) ? null : `${CHROMIUM} not found (apt-get install -y chromium, or set EDGEFLEET_CHROMIUM)`;
}

/** Debian's chromium, headless, with everything that would talk to the network switched off. */
export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
  });
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Collects page errors and failed console messages so a test can assert the page ran clean. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 40[14]/.test(m.text())) errors.push(`console: ${m.text()}`);
  });
  return errors;
}

/**
 * A fresh browser with one page logged in to the dashboard at `path` (after `/ui/`, e.g. `?poll=60000#/fleet`); the
 * page's errors are collected in `errors`. Close `browser` when done.
 */
export async function openDashboard(httpUrl: string, token: string, path: string): Promise<{ browser: Browser; page: Page; errors: string[] }> {
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = watchErrors(page);
    await page.goto(`${httpUrl}/ui/${path}`);
    await page.fill('#token', token);
    await page.press('#token', 'Enter');
    return { browser, page, errors };
  } catch (e) {
    await browser.close();
    throw e;
  }
}
