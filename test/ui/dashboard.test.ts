import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { waitUntil } from '../integration/support.js';
import { startReceiver, type Receiver } from '../webhooks/receiver.js';
import { launchChromium, screenshot } from './browser.js';

/**
 * The dashboard clicked through in headless chromium against a real service (SQLite, Redis,
 * in-process workers running command tasks): log in, watch progress, cancel, retry, download,
 * filter; user data rendered as text.
 */
describe('dashboard in chromium', () => {
  let svc: TestService;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let dir: string;
  let hookOk: Receiver;
  let hookDown: Receiver;
  // Labels unique to this run, so filters see only this file's batches.
  const run = `r${randomBytes(3).toString('hex')}`;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-ui-'));
    [hookOk, hookDown] = await Promise.all([startReceiver(), startReceiver(0, () => 503)]);
    [svc, browser] = await Promise.all([
      startTestService({
        redisUrl: inject('redisUrl'),
        env: { FANOUT_WEBHOOK_ALLOW: '127.0.0.1', FANOUT_WEBHOOK_RETRY_SCHEDULE: '1s', FANOUT_WEBHOOK_TIMEOUT_SECONDS: '2' },
        tasks: [
          'echo=cat',
          'slow=sleep 0.5; cat',
          'sleepy=sleep 20; cat',
          // Fails (stderr + exit 3) until the test creates the batch's ok-file.
          // A picture for the README: slowish, a JSON result, a few items fail with a stderr line.
          `thumbs=sleep 0.$((FANOUT_ITEM_INDEX % 4 + 3)); if [ $((FANOUT_ITEM_INDEX % 9)) = 4 ]; then echo "convert: corrupt JPEG data: premature end of data segment" >&2; exit 2; fi; printf '{"thumb":"s3://media/thumbs/%s.webp","bytes":%d}' "$FANOUT_ITEM_INDEX" $((FANOUT_ITEM_INDEX * 1371 % 9000 + 12000))`,
          `flaky=if test -f "${dir}/$FANOUT_BATCH_ID-ok"; then cat; else echo "boom <b>on</b> item $FANOUT_ITEM_INDEX" >&2; exit 3; fi`,
        ],
      }),
      launchChromium(),
    ]);
  });
  afterAll(async () => {
    await browser?.close();
    await svc?.close();
    await hookOk?.close();
    await hookDown?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    page = await context.newPage();
    await login();
  });
  afterEach(async () => {
    await context?.close();
  });

  async function login() {
    await page.goto(`${svc.url}/ui/batches`);
    expect(new URL(page.url()).pathname).toBe('/ui/login');
    await page.fill('#key', svc.apiKey);
    await Promise.all([page.waitForURL(/\/ui\/batches$/), page.click('button[type=submit]')]);
  }

  const bar = (id: string) => page.locator(`[role=progressbar][data-progress="${id}"]`);
  const valueNow = async (id: string) => Number(await bar(id).first().getAttribute('aria-valuenow'));

  it('logs in through the form; the batch page follows a running batch to 100%', async () => {
    await screenshot(page, 'batches-after-login');
    const b = await svc.client.createBatch({ name: 'progress', labels: { run }, task: 'slow', items: Array.from({ length: 8 }, (_, i) => `item-${i}`), parallelism: 2 });
    await page.goto(`${svc.url}/ui/batches/${b.id}`);
    const first = await valueNow(b.id);
    expect(first).toBeLessThan(100);
    await screenshot(page, 'batch-running');
    // Live: the bar moves without the test reloading the page, and ends at 100.
    await page.waitForSelector(`[role=progressbar][data-progress="${b.id}"][aria-valuenow="100"]`, { timeout: 30_000 });
    await page.waitForSelector(`[data-phase-of="${b.id}"]:text("Succeeded")`, { timeout: 10_000 });
    // the page reloads itself once the batch is final: count the rows of the page it settles on
    await waitUntil(async () => (await page.locator('#items tbody tr').count()) === 8, 'the 8 item rows of the final page');
    expect(await page.locator('#items code.result').first().textContent()).toBe('item-0');
    await screenshot(page, 'batch-succeeded');
    expect((await svc.client.getBatch(b.id)).status.phase).toBe('Succeeded');
  });

  it('the batch list updates running batches live', async () => {
    const b = await svc.client.createBatch({ name: 'list-live', labels: { run, kind: 'live' }, task: 'slow', items: Array.from({ length: 6 }, (_, i) => i), parallelism: 2 });
    await page.goto(`${svc.url}/ui/batches?labelSelector=${encodeURIComponent(`run=${run},kind=live`)}`);
    expect(await valueNow(b.id)).toBeLessThan(100);
    await page.waitForSelector(`[role=progressbar][data-progress="${b.id}"][aria-valuenow="100"]`, { timeout: 30_000 });
    expect(await page.locator(`[data-phase-of="${b.id}"]`).textContent()).toBe('Succeeded');
    await screenshot(page, 'batches-live');
  });

  it('cancels a running batch from its page', async () => {
    const b = await svc.client.createBatch({ name: 'to-cancel', labels: { run }, task: 'sleepy', items: ['a', 'b', 'c'], parallelism: 1 });
    await waitUntil(async () => (await svc.client.getBatch(b.id)).status.counts.running > 0, 'an item to run');
    await page.goto(`${svc.url}/ui/batches/${b.id}`);
    await Promise.all([page.waitForURL(/done=cancelled/), page.click('#cancel')]);
    expect(await page.locator('.notice').textContent()).toMatch(/Cancel requested/);
    const done = await svc.client.waitForPhase(b.id, ['Cancelled'], 15_000);
    expect(done.status.counts.cancelled).toBe(3);
    await page.waitForSelector(`[data-phase-of="${b.id}"]:text("Cancelled")`, { timeout: 15_000 });
    // the live badge changes first; the page reloads itself once the batch is final, without the button
    await page.waitForSelector('#cancel', { state: 'detached', timeout: 15_000 });
    expect(await page.locator('#cancel').count()).toBe(0);
    await screenshot(page, 'batch-cancelled');
  });

  it('suspends a running batch from its page and resumes it; each button shows only when the state machine allows it', async () => {
    const b = await svc.client.createBatch({ name: 'to-suspend', labels: { run }, task: 'slow', items: ['a', 'b', 'c', 'd', 'e', 'f'], parallelism: 1 });
    await waitUntil(async () => (await svc.client.getBatch(b.id)).status.counts.running > 0, 'an item to run');
    await page.goto(`${svc.url}/ui/batches/${b.id}`);
    expect(await page.locator('#resume').count()).toBe(0);
    await Promise.all([page.waitForURL(/done=suspended/), page.click('#suspend')]);
    expect(await page.locator('.notice').textContent()).toMatch(/Suspend requested/);
    const held = await svc.client.waitForPhase(b.id, ['Suspended'], 15_000);
    expect(held.status.counts.succeeded).toBeLessThan(6);

    await page.goto(`${svc.url}/ui/batches/${b.id}`);
    expect(await page.locator('#suspend').count()).toBe(0);
    await screenshot(page, 'batch-suspended');
    await Promise.all([page.waitForURL(/done=resumed/), page.click('#resume')]);
    const done = await svc.client.waitForPhase(b.id, undefined, 30_000);
    expect(done.status.phase).toBe('Succeeded');
    expect(done.status.counts.succeeded).toBe(6);
    await page.waitForSelector(`[data-phase-of="${b.id}"]:text("Succeeded")`, { timeout: 15_000 });
    // the page reloads itself once the batch is final; the final page offers none of the three
    await page.waitForSelector('#cancel', { state: 'detached', timeout: 15_000 });
    expect(await page.locator('#suspend, #resume, #cancel').count()).toBe(0);
  }, 90_000);

  it('shows failed attempts with their stderr, filters items by status, and retries the failed ones', async () => {
    const b = await svc.client.createBatch({ name: 'flaky', labels: { run }, task: 'flaky', items: ['x', 'y', 'z'], parallelism: 3, retry: { backoffLimitPerItem: 0 } });
    const failed = await svc.client.waitForPhase(b.id, ['Failed'], 30_000);
    expect(failed.status.counts.failed).toBe(3);
    await page.goto(`${svc.url}/ui/batches/${b.id}`);
    expect(await valueNow(b.id)).toBe(100);
    // The status filter: failed shows the three, succeeded none.
    await Promise.all([page.waitForURL(/status=failed/), page.click('[data-status-filter=failed]')]);
    expect(await page.locator('#items tbody tr').count()).toBe(3);
    await page.locator('#items tbody tr >> nth=0 >> details summary').click();
    const stderr = await page.locator('#items tbody tr >> nth=0 >> pre.stderr').textContent();
    expect(stderr).toContain('boom <b>on</b> item 0'); // shown as text, not markup
    expect(await page.locator('#items tbody tr >> nth=0 >> .attempt').textContent()).toMatch(/exit 3/);
    await screenshot(page, 'batch-failed');
    await page.click('[data-status-filter=succeeded]');
    await page.waitForURL(/status=succeeded/);
    expect(await page.locator('#items tbody tr').count()).toBe(0);

    fs.writeFileSync(path.join(dir, `${b.id}-ok`), '');
    await Promise.all([page.waitForURL(/done=retried/), page.click('#retry')]);
    const done = await svc.client.waitForPhase(b.id, ['Succeeded'], 30_000);
    expect(done.status.counts.succeeded).toBe(3);
    const items = (await svc.client.json('GET', `/v1/batches/${b.id}/items`)).body.items as { attempts: { outcome: string }[] }[];
    expect(items.map((i) => i.attempts.map((a) => a.outcome))).toEqual([['failed', 'succeeded'], ['failed', 'succeeded'], ['failed', 'succeeded']]);
    await page.waitForSelector(`[role=progressbar][data-progress="${b.id}"][aria-valuenow="100"]`);
    await page.waitForSelector(`[data-phase-of="${b.id}"]:text("Succeeded")`, { timeout: 15_000 });
    await screenshot(page, 'batch-retried');
  }, 90_000);

  it('downloads the results NDJSON with the session', async () => {
    const b = await svc.client.createBatch({ labels: { run }, task: 'echo', items: ['one', { n: 2 }, 'three'] });
    await svc.client.waitForPhase(b.id);
    await page.goto(`${svc.url}/ui/batches/${b.id}`);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    expect(download.suggestedFilename()).toBe(`${b.id}-results.ndjson`);
    const text = fs.readFileSync((await download.path())!, 'utf8');
    const lines = text.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toEqual(await svc.client.results(b.id));
    expect(lines.map((l) => l.result)).toEqual(['one', '{"n":2}', 'three']);
  });

  it('filters the list with a label selector and by phase', async () => {
    const a = await svc.client.createBatch({ name: 'alpha', labels: { run, team: 'alpha' }, task: 'echo', items: ['a'] });
    const z = await svc.client.createBatch({ name: 'beta', labels: { run, team: 'beta' }, task: 'echo', items: ['b'] });
    await svc.client.waitForPhase(a.id);
    await svc.client.waitForPhase(z.id);
    await page.fill('input[name=labelSelector]', `run=${run},team=alpha`);
    await Promise.all([page.waitForURL(/labelSelector=/), page.click('form.filters button[type=submit]')]);
    const ids = await page.locator('#batches tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-row')));
    expect(ids).toEqual([a.id]);
    await page.fill('input[name=labelSelector]', `run=${run},team in (alpha,beta)`);
    await Promise.all([page.waitForURL(/labelSelector=/), page.click('form.filters button[type=submit]')]);
    expect(await page.locator('#batches tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-row')))).toEqual([z.id, a.id]);
    await screenshot(page, 'batches-filtered');
    await page.selectOption('select[name=phase]', 'Failed');
    await Promise.all([page.waitForURL(/phase=Failed/), page.click('form.filters button[type=submit]')]);
    expect(await page.locator('#batches tbody tr').count()).toBe(0);
    // A bad selector is an error on the page, not a crash.
    await page.fill('input[name=labelSelector]', 'team in (alpha');
    await page.click('form.filters button[type=submit]');
    await page.waitForSelector('.notice.error');
    expect(await page.locator('.notice.error').textContent()).toMatch(/Invalid label selector/);
  });

  it('renders hostile item data as text', async () => {
    const evil = '<script>window.__xss = 1</script>';
    const b = await svc.client.createBatch({
      name: '<img src=x onerror="window.__xss=2">',
      labels: { run },
      task: 'echo',
      items: [evil, { html: '<img src=x onerror="window.__xss=3">' }, `"><svg onload="window.__xss=4">`],
    });
    await svc.client.waitForPhase(b.id);
    for (const url of [`/ui/batches/${b.id}`, `/ui/batches?labelSelector=run%3D${run}`]) {
      await page.goto(svc.url + url);
      expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
      expect(await page.locator('main script, main img, main svg:not([aria-hidden])').count()).toBe(0);
    }
    await page.goto(`${svc.url}/ui/batches/${b.id}`);
    expect(await page.locator('h1').textContent()).toContain('<img src=x onerror="window.__xss=2">');
    expect(await page.locator('#items code.input >> nth=0').textContent()).toBe(evil);
    expect(await page.locator('#items code.result >> nth=0').textContent()).toBe(evil);
    await screenshot(page, 'batch-xss-as-text');
  });

  it('shows schedules and webhook deliveries, and logs out', async () => {
    const s = await svc.client.json('POST', '/v1/schedules', { name: 'nightly <b>', schedule: '0 3 * * *', timeZone: 'Europe/Berlin', batchTemplate: { task: 'echo', items: ['n'], labels: { run } } });
    expect(s.status, JSON.stringify(s.body)).toBe(201);
    const t = await svc.client.json('POST', `/v1/schedules/${s.body.id}/trigger`);
    expect(t.status).toBe(202);
    await page.click('nav >> text=Schedules');
    await page.waitForURL(/\/ui\/schedules$/);
    const row = page.locator(`tr[data-schedule="${s.body.id}"]`);
    expect(await row.textContent()).toContain('nightly <b>');
    expect(await row.textContent()).toContain('0 3 * * *');
    expect(await row.locator(`a[href="/ui/batches/${t.body.id}"]`).count()).toBeGreaterThan(0);
    await screenshot(page, 'schedules');

    // Two batches with webhooks: one receiver answers 200, the other 503 until the retries are used up.
    const ok = await svc.client.createBatch({ labels: { run }, task: 'echo', items: ['w'], webhook: { url: hookOk.url } });
    const down = await svc.client.createBatch({ labels: { run }, task: 'echo', items: ['w'], webhook: { url: hookDown.url } });
    const deliveries = async (id: string) => (await svc.client.json('GET', `/v1/batches/${id}/webhook-deliveries`)).body.items as { id: string; status: string }[];
    await waitUntil(async () => (await deliveries(ok.id))[0]?.status === 'succeeded', 'the delivery to succeed', 30_000);
    await waitUntil(async () => (await deliveries(down.id))[0]?.status === 'failed', 'the delivery to fail', 30_000);
    const [okDelivery] = await deliveries(ok.id);
    const [downDelivery] = await deliveries(down.id);

    await page.click('nav >> text=Webhook deliveries');
    await page.waitForURL(/\/ui\/webhooks$/);
    const okRow = page.locator(`tr[data-delivery="${okDelivery.id}"]`);
    const downRow = page.locator(`tr[data-delivery="${downDelivery.id}"]`);
    expect(await okRow.textContent()).toMatch(/batch\.succeeded[\s\S]*succeeded/);
    expect(await okRow.locator(`a[href="/ui/batches/${ok.id}"]`).count()).toBe(1);
    expect(await downRow.textContent()).toMatch(/failed/);
    expect(Number(await downRow.locator('td.num').textContent())).toBe(2);
    await downRow.locator('details summary').click();
    expect(await downRow.locator('.attempt').count()).toBe(2);
    expect(await downRow.locator('.attempt >> nth=0').textContent()).toMatch(/HTTP 503/);
    await screenshot(page, 'webhook-deliveries');
    // The status filter.
    await page.click('a.button:text-is("failed")');
    await page.waitForURL(/status=failed/);
    expect(await page.locator(`tr[data-delivery="${okDelivery.id}"]`).count()).toBe(0);
    expect(await page.locator(`tr[data-delivery="${downDelivery.id}"]`).count()).toBe(1);

    await Promise.all([page.waitForURL(/\/ui\/login$/), page.click('text=Log out')]);
    await page.goto(`${svc.url}/ui/batches`);
    expect(new URL(page.url()).pathname).toBe('/ui/login');
  }, 60_000);

  it('takes the README screenshot of a batch page (docs/images/dashboard.png with FANOUT_UI_DOCS_SCREENSHOT=1)', async () => {
    const items = Array.from({ length: 36 }, (_, i) => ({ customId: `IMG_${String(4200 + i)}.jpg`, src: `s3://media/uploads/IMG_${4200 + i}.jpg`, width: 320 }));
    const b = await svc.client.createBatch({ name: 'thumbnails-2026-11-29', labels: { team: 'media', pipeline: 'thumbnails' }, task: 'thumbs', items, parallelism: 4, retry: { backoffLimitPerItem: 0, maxFailedItems: 10 } });
    await page.goto(`${svc.url}/ui/batches/${b.id}`);
    // Mid-run: most items final, some running, a few failed.
    await page.waitForFunction((id) => Number(document.querySelector(`[data-progress="${id}"]`)?.getAttribute('aria-valuenow')) >= 60, b.id, { timeout: 60_000 });
    await page.goto(`${svc.url}/ui/batches/${b.id}`);
    await page.locator('#items tbody tr[data-index="4"] details summary').click();
    await page.setViewportSize({ width: 1280, height: 900 });
    const file = await screenshot(page, 'dashboard', false);
    if (process.env.FANOUT_UI_DOCS_SCREENSHOT === '1') fs.copyFileSync(file, path.resolve('docs/images/dashboard.png'));
    await svc.client.json('POST', `/v1/batches/${b.id}/cancel`);
  }, 90_000);
});
