import { html } from 'hono/html';
import { PHASES } from '../../domain/batch-status.js';
import type { batchView } from '../views.js';
import { formatTime } from './format.js';
import { labelChips, page, pager, phaseBadge, progressBar, type Html } from './layout.js';

export type BatchView = ReturnType<typeof batchView>;

export interface BatchesPageData {
  batches: BatchView[];
  labelSelector: string;
  phase: string;
  /** the last id of this page when more follow */
  nextAfter: string | null;
  onFirst: boolean;
  error?: string;
}

const isFinal = (phase: string) => phase === 'Succeeded' || phase === 'Failed' || phase === 'Cancelled';

/** GET /ui/batches: the tenant's batches, newest first, with filters and live progress. */
export function batchesPage(d: BatchesPageData): Html {
  const filterQuery = new URLSearchParams();
  if (d.labelSelector) filterQuery.set('labelSelector', d.labelSelector);
  if (d.phase) filterQuery.set('phase', d.phase);
  const nextQuery = d.nextAfter ? new URLSearchParams([...filterQuery, ['after', d.nextAfter]]).toString() : null;
  const rows = d.batches.map(
    (b) => html`<tr data-row="${b.id}">
<td><a href="/ui/batches/${b.id}">${b.name ?? b.id}</a><div class="mono muted">${b.id}</div></td>
<td class="cell-clip">${labelChips(b.labels)}</td>
<td>${phaseBadge(b.id, b.status.phase)}</td>
<td>${progressBar(b.id, b.status.counts, isFinal(b.status.phase))}</td>
<td class="num"><span data-count-of="${b.id}" data-count="succeeded">${b.status.counts.succeeded}</span> / <span data-count-of="${b.id}" data-count="failed">${b.status.counts.failed}</span> / <span data-count-of="${b.id}" data-count="total">${b.status.counts.total}</span></td>
<td>${formatTime(b.createdAt)}</td>
</tr>`,
  );
  return page(
    { title: 'Batches', nav: 'batches', data: { poll: '/ui/api/progress' }, notice: d.error ? { text: d.error, error: true } : undefined },
    html`<h1>Batches</h1>
<form class="filters" method="get" action="/ui/batches" role="search">
<input class="wide" type="text" name="labelSelector" value="${d.labelSelector}" placeholder="label selector, e.g. team=data,tier notin (dev)" aria-label="label selector">
<select name="phase" aria-label="phase"><option value="">any phase</option>${PHASES.map((p) => html`<option${p === d.phase ? html` selected` : ''}>${p}</option>`)}</select>
<button type="submit">Filter</button>
${d.labelSelector || d.phase ? html`<a href="/ui/batches">Clear</a>` : ''}
</form>
${d.batches.length === 0
  ? html`<div class="panel muted">No batches${d.labelSelector || d.phase ? ' match these filters' : ' yet'}.</div>`
  : html`<table id="batches">
<thead><tr><th>Batch</th><th>Labels</th><th>Phase</th><th>Progress</th><th class="num">OK / failed / total</th><th>Created (UTC)</th></tr></thead>
<tbody>${rows}</tbody>
</table>`}
${pager('/ui/batches', filterQuery.toString(), nextQuery, d.onFirst)}`,
  );
}
