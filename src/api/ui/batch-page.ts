import { html } from 'hono/html';
import type { AttemptRow, ItemRow } from '../../store/item-queries.js';
import type { BatchView } from './batches-page.js';
import { formatDuration, formatTime, previewJson, tailLines, truncate } from './format.js';
import { labelChips, page, pager, phaseBadge, progressBar, statusBadge, type Html } from './layout.js';

export const ITEM_STATUSES = ['pending', 'running', 'succeeded', 'failed', 'cancelled'] as const;

export interface BatchPageData {
  batch: BatchView;
  final: boolean;
  items: { row: ItemRow; attempts: AttemptRow[] }[];
  status: string;
  nextAfter: number | null;
  onFirst: boolean;
  /** the action buttons to show, as the state machine allows them now */
  actions: readonly PageAction[];
  notice?: { text: string; error?: boolean };
}

/** The batch actions the page offers, in the order of their buttons. */
export const PAGE_ACTIONS = ['suspend', 'resume', 'cancel', 'retry'] as const;
export type PageAction = (typeof PAGE_ACTIONS)[number];

/** Each action's button, and the `?done=` word its redirect carries. */
export const ACTION_BUTTONS: Record<PageAction, { label: string; className: string; done: string }> = {
  suspend: { label: 'Suspend', className: '', done: 'suspended' },
  resume: { label: 'Resume', className: 'primary', done: 'resumed' },
  cancel: { label: 'Cancel batch', className: 'danger', done: 'cancelled' },
  retry: { label: 'Retry failed items', className: 'primary', done: 'retried' },
};

const NOTICES: Record<string, string> = {
  suspended: 'Suspend requested: running items finish, no new item starts until you resume.',
  resumed: 'Resumed: pending items start again.',
  cancelled: 'Cancel requested: running items are stopped, pending ones never start.',
  retried: 'Retry requested: the failed items run again.',
};
/** A notice named by a redirect's `?done=` (a fixed text: nothing from the URL is shown). */
export const noticeFor = (done: string | undefined) => (done && NOTICES[done] ? { text: NOTICES[done] } : undefined);

function attemptLine(a: AttemptRow): Html {
  const bits = [
    a.exitCode !== null ? `exit ${a.exitCode}` : null,
    a.httpStatus !== null ? `HTTP ${a.httpStatus}` : null,
    a.condition,
    a.decision,
    a.startedAt !== null ? formatDuration(a.finishedAt - a.startedAt) : null,
    a.worker ? `on ${a.worker}` : null,
  ].filter((b): b is string => !!b);
  return html`<div class="attempt ${a.outcome}"><b>#${a.attempt}</b> ${a.outcome}${bits.length ? ` · ${bits.join(' · ')}` : ''} <span class="muted">${formatTime(a.finishedAt)}</span>${a.error ? html`<pre class="stderr">${truncate(tailLines(a.error, 15), 2000)}</pre>` : ''}</div>`;
}

function itemRow(batchId: string, { row, attempts }: { row: ItemRow; attempts: AttemptRow[] }): Html {
  const outcome = row.resultBlob
    ? html`<span class="muted">large result: see the download</span>`
    : row.result !== null
      ? html`<code class="result clip" title="${previewJson(row.result, 500)}">${previewJson(row.result, 120)}</code>`
      : '';
  return html`<tr data-index="${String(row.idx)}">
<td class="num">${row.idx}</td>
<td class="nowrap">${row.customId ? truncate(row.customId, 40) : ''}</td>
<td>${statusBadge(row.status)}</td>
<td><code class="input clip" title="${previewJson(row.input, 500)}">${previewJson(row.input, 120)}</code></td>
<td class="cell-clip">${outcome}${row.error ? html`<div class="error-text">${truncate(row.error, 200)}</div>` : ''}${row.reason ? html`<div class="muted">${row.reason}</div>` : ''}</td>
<td>${attempts.length === 0 ? html`<span class="muted">none</span>` : html`<details><summary>${attempts.length} attempt${attempts.length === 1 ? '' : 's'}</summary>${attempts.map(attemptLine)}</details>`}</td>
</tr>`;
}

/** GET /ui/batches/{id}: counts, live progress, actions and the item table. */
export function batchPage(d: BatchPageData): Html {
  const b = d.batch;
  const s = b.status;
  const base = `/ui/batches/${b.id}`;
  const statusQuery = d.status ? new URLSearchParams({ status: d.status }).toString() : '';
  const nextQuery = d.nextAfter !== null ? new URLSearchParams([...(d.status ? [['status', d.status]] : []), ['after', String(d.nextAfter)]]).toString() : null;
  const spec = b.spec as { runtime?: string; task?: string; parallelism?: number };
  const started = s.startTime ? Date.parse(s.startTime) : null;
  const duration = started !== null ? (s.completionTime ? Date.parse(s.completionTime) : Date.now()) - started : null;
  const tabs = [['', 'all', s.counts.total] as const, ...ITEM_STATUSES.map((st) => [st, st, s.counts[st]] as const)];
  return page(
    { title: b.name ?? b.id, nav: 'batches', data: d.final ? { batch: b.id } : { batch: b.id, follow: `${base}/events` }, notice: d.notice },
    html`<h1>${b.name ?? b.id} ${phaseBadge(b.id, s.phase)}</h1>
<div class="actions">
${d.actions.map((a) => html`<form method="post" action="${base}/${a}"><button class="${ACTION_BUTTONS[a].className}" type="submit" id="${a}">${ACTION_BUTTONS[a].label}</button></form>`)}
<a class="button" id="download" href="${base}/results" download="${b.id}-results.ndjson">Download results (NDJSON)</a>
</div>
<div class="panel">
${progressBar(b.id, s.counts, d.final, true)}
<div class="counts">${(['total', 'pending', 'running', 'succeeded', 'failed', 'cancelled'] as const).map(
      (k) => html`<div><b data-count-of="${b.id}" data-count="${k}">${s.counts[k]}</b><span>${k}</span></div>`,
    )}</div>
<dl class="meta">
<dt>Id</dt><dd class="mono">${b.id}</dd>
<dt>Runtime / task</dt><dd>${spec.runtime ?? 'queue'}${spec.task ? ` / ${spec.task}` : ''}</dd>
<dt>Labels</dt><dd>${Object.keys(b.labels).length ? labelChips(b.labels) : html`<span class="muted">none</span>`}</dd>
<dt>Parallelism</dt><dd>${spec.parallelism ?? '—'}</dd>
<dt>Created (UTC)</dt><dd>${formatTime(b.createdAt)}</dd>
<dt>Started / completed</dt><dd>${formatTime(s.startTime)} / ${formatTime(s.completionTime)}</dd>
<dt>Duration</dt><dd>${formatDuration(duration)}</dd>
<dt>Failed indexes</dt><dd class="mono">${s.failedIndexes || '—'}</dd>
</dl>
${s.conditions.length ? html`<h2>Conditions</h2><ul>${s.conditions.map((c) => html`<li><b>${c.type}</b> ${c.reason}: ${c.message} <span class="muted">${formatTime(c.lastTransitionTime)}</span></li>`)}</ul>` : ''}
</div>
<h2>Items</h2>
<nav class="filters" aria-label="item status">${tabs.map(
      ([st, label, n]) => html`<a class="button${st === d.status ? ' on' : ''}" data-status-filter="${label}" href="${base}${st ? `?status=${st}` : ''}"${st === d.status ? html` aria-current="true"` : ''}>${label} (${n})</a>`,
    )}</nav>
${d.items.length === 0
  ? html`<div class="panel muted">No ${d.status || ''} items${d.onFirst ? '' : ' on this page'}.</div>`
  : html`<table id="items"><thead><tr><th class="num">#</th><th>Custom id</th><th>Status</th><th>Input</th><th>Result / error</th><th>Attempts</th></tr></thead>
<tbody>${d.items.map((it) => itemRow(b.id, it))}</tbody></table>`}
${pager(base, statusQuery, nextQuery, d.onFirst)}`,
  );
}
