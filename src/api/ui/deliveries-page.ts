import { html } from 'hono/html';
import type { AttemptLogRow, DeliveryRow } from '../../store/webhook-deliveries.js';
import { formatTime, truncate } from './format.js';
import { page, pager, statusBadge, type Html } from './layout.js';

export const DELIVERY_STATUSES = ['pending', 'succeeded', 'failed'] as const;

export interface DeliveriesPageData {
  deliveries: { row: DeliveryRow; attempts: AttemptLogRow[] }[];
  status: string;
  nextAfter: string | null;
  onFirst: boolean;
}

function attemptLine(a: AttemptLogRow): Html {
  return html`<div class="attempt ${a.statusCode !== null && a.statusCode < 300 ? 'succeeded' : 'failed'}"><b>#${a.attempt}</b> ${formatTime(a.at)} · ${a.statusCode !== null ? `HTTP ${a.statusCode}` : 'no response'} · ${a.latencyMs}ms${a.error ? html`<div class="error-text">${truncate(a.error, 300)}</div>` : ''}${a.response ? html`<pre>${truncate(a.response, 500)}</pre>` : ''}</div>`;
}

/** GET /ui/webhooks: the tenant's latest webhook deliveries, their status and attempts. */
export function deliveriesPage(d: DeliveriesPageData): Html {
  const base = '/ui/webhooks';
  const statusQuery = d.status ? new URLSearchParams({ status: d.status }).toString() : '';
  const nextQuery = d.nextAfter ? new URLSearchParams([...(d.status ? [['status', d.status]] : []), ['after', d.nextAfter]]).toString() : null;
  const rows = d.deliveries.map(
    ({ row: r, attempts }) => html`<tr data-delivery="${r.id}">
<td>${formatTime(r.createdAt)}</td>
<td><code>${r.type}</code></td>
<td><a class="mono" href="/ui/batches/${r.batchId}">${r.batchId}</a></td>
<td class="cell-clip">${truncate(r.url, 80)}<div class="muted">${r.endpointId ? `endpoint ${r.endpointId}` : "batch's own webhook"}</div></td>
<td>${statusBadge(r.status)}${r.status === 'pending' && r.nextAttemptAt ? html`<div class="muted">next ${formatTime(r.nextAttemptAt)}</div>` : ''}</td>
<td class="num">${r.attempts}</td>
<td class="cell-clip">${r.lastError ? html`<span class="error-text">${truncate(r.lastError, 160)}</span>` : ''}${attempts.length ? html`<details><summary>attempt log</summary>${attempts.map(attemptLine)}</details>` : ''}</td>
</tr>`,
  );
  return page(
    { title: 'Webhook deliveries', nav: 'webhooks' },
    html`<h1>Webhook deliveries</h1>
<nav class="filters" aria-label="delivery status">${[['', 'all'], ...DELIVERY_STATUSES.map((s) => [s, s])].map(
      ([st, label]) => html`<a class="button${st === d.status ? ' on' : ''}" href="${base}${st ? `?status=${st}` : ''}">${label}</a>`,
    )}</nav>
${d.deliveries.length === 0
  ? html`<div class="panel muted">No ${d.status || ''} webhook deliveries.</div>`
  : html`<table id="deliveries"><thead><tr><th>Created (UTC)</th><th>Event</th><th>Batch</th><th>Target</th><th>Status</th><th class="num">Attempts</th><th>Last error</th></tr></thead><tbody>${rows}</tbody></table>`}
${pager(base, statusQuery, nextQuery, d.onFirst)}`,
  );
}
