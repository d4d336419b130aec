import { html } from 'hono/html';
import { QUOTA_NAMES } from '../../domain/quotas.js';
import type { readUsage } from '../usage-router.js';
import { page, type Html } from './layout.js';

type Usage = ReturnType<typeof readUsage> extends Generator<unknown, infer T, unknown> ? T : never;

const QUOTA_LABELS: Record<(typeof QUOTA_NAMES)[number], string> = {
  batchesPerMinute: 'Batches this minute',
  itemsPerMinute: 'Items submitted this minute',
  storedItems: 'Items stored',
  storedResultBytes: 'Result bytes stored',
  runningItems: 'Items running now',
};

/** GET /ui/usage: the tenant's quotas with their use, and its usage of the last days. */
export function usagePage(u: Usage): Html {
  const quotaRows = QUOTA_NAMES.map((name) => {
    const q = u.quotas[name];
    const share = q.limit === null || q.limit === 0 ? null : Math.min(100, Math.round((q.used / q.limit) * 100));
    return html`<tr data-quota="${name}"><td>${QUOTA_LABELS[name]}<div class="mono muted">${name}</div></td><td class="num">${q.used}</td><td class="num">${q.limit === null ? html`<span class="muted">unlimited</span>` : String(q.limit)}</td><td>${share === null ? '' : html`<progress max="100" value="${share}">${share}%</progress> ${share}%`}</td></tr>`;
  });
  const dayRows = (u.days ?? [])
    .slice()
    .reverse()
    .map((d) => html`<tr><td>${d.day}</td><td class="num">${d.batches}</td><td class="num">${d.itemsSubmitted}</td><td class="num">${d.itemsRun}</td><td class="num">${d.itemSeconds.toFixed(1)}</td><td class="num">${d.resultBytes}</td></tr>`);
  return page(
    { title: 'Usage', nav: 'usage' },
    html`<h1>Usage</h1>
<h2>Quotas</h2>
<table id="quotas"><thead><tr><th>Quota</th><th>Used</th><th>Limit</th><th></th></tr></thead><tbody>${quotaRows}</tbody></table>
<h2>Per day (UTC), ${u.from} to ${u.to}</h2>
<table id="usage-days"><thead><tr><th>Day</th><th>Batches</th><th>Items submitted</th><th>Items run</th><th>Item-seconds</th><th>Result bytes</th></tr></thead><tbody>${dayRows}</tbody></table>`,
  );
}
