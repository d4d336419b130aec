import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Headless Debian chromium for the dashboard tests (installed by `npm run setup`), and screenshots. */

export const CHROMIUM = '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  // Never a skip: a machine without chromium cannot say the dashboard works.
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run npm run setup (it installs Debian's chromium)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export const screenshotDir = () => path.resolve(process.env.FANOUT_TEST_REPORT_DIR ?? '.tmp', 'screenshots');

/** Saves a screenshot (the full page unless `fullPage` is false) as `<report dir>/screenshots/<name>.png` and returns its path. */
export async function screenshot(page: Page, name: string, fullPage = true): Promise<string> {
  const dir = screenshotDir();
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.png`);
  await page.screenshot({ path: file, fullPage });
  return file;
}

/** The session cookie a login through the form (by fetch, as a browser would send it) sets. */
export async function loginCookie(url: string, key: string): Promise<string> {
  const res = await fetch(`${url}/ui/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { origin: url, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ key }).toString(),
  });
  if (res.status !== 303) throw new Error(`login answered ${res.status}: ${await res.text()}`);
  const set = res.headers.get('set-cookie') ?? '';
  const m = /fanout_session=([^;]+)/.exec(set);
  if (!m) throw new Error(`login set no session cookie: ${set}`);
  return `fanout_session=${m[1]}`;
}
