import { html } from 'hono/html';
import type { ItemCounts } from '../../domain/batch-status.js';
import { progressOf } from './format.js';

/**
 * The page shell and small pieces shared by the dashboard pages. Everything goes through hono's
 * `html` template, which escapes every interpolated string: user data never becomes markup.
 */

export type Html = ReturnType<typeof html>;

export interface PageOptions {
  title: string;
  /** nav entry to highlight; none on the login page (which has no nav) */
  nav?: 'batches' | 'schedules' | 'webhooks' | 'usage';
  /** data-* attributes on <body> that start the page script (follow, batch, poll) */
  data?: Record<string, string>;
  notice?: { text: string; error?: boolean };
}

const NAV: [NonNullable<PageOptions['nav']>, string, string][] = [
  ['batches', 'Batches', '/ui/batches'],
  ['schedules', 'Schedules', '/ui/schedules'],
  ['webhooks', 'Webhook deliveries', '/ui/webhooks'],
  ['usage', 'Usage', '/ui/usage'],
];

export function page(o: PageOptions, body: Html): Html {
  const data = Object.entries(o.data ?? {}).map(([k, v]) => html` data-${k}="${v}"`);
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${o.title} · Fanout</title>
<link rel="stylesheet" href="/ui/assets/dashboard.css">
<script src="/ui/assets/dashboard.js" defer></script>
</head>
<body${data}>
<header class="top"><div class="wrap">
<a class="brand" href="/ui/batches">Fanout</a>
${o.nav
  ? html`<nav>${NAV.map(([key, label, href]) => html`<a href="${href}"${key === o.nav ? html` class="on" aria-current="page"` : ''}>${label}</a>`)}</nav>
<form method="post" action="/ui/logout"><button class="link" type="submit">Log out</button></form>`
  : ''}
</div></header>
<main class="wrap">
${o.notice ? html`<div class="notice${o.notice.error ? ' error' : ''}" role="${o.notice.error ? 'alert' : 'status'}">${o.notice.text}</div>` : ''}
${body}
</main>
</body>
</html>`;
}

export const phaseBadge = (id: string, phase: string) => html`<span class="phase phase-${phase}" data-phase-of="${id}">${phase}</span>`;

export const statusBadge = (status: string) => html`<span class="phase st-${status}">${status}</span>`;

export const labelChips = (labels: Record<string, string>) =>
  Object.entries(labels).map(([k, v]) => html`<span class="label">${k}=${v}</span>`);

/**
 * A stacked progress bar (succeeded, failed, cancelled, running) drawn in SVG, so its widths are
 * attributes rather than inline styles (the dashboard's CSP allows no inline style). The
 * `progressbar` role carries the percentage in aria-valuenow; the page script updates it live.
 */
export function progressBar(id: string, counts: ItemCounts, final: boolean, big = false): Html {
  const p = progressOf(counts, final);
  let x = 0;
  const segs = (['succeeded', 'failed', 'cancelled', 'running'] as const).map((k) => {
    const rect = html`<rect class="seg-${k}" data-seg="${k}" x="${String(x)}" y="0" width="${String(p.segments[k])}" height="10"></rect>`;
    x += p.segments[k];
    return rect;
  });
  return html`<div class="progress${big ? ' big' : ''}" role="progressbar" aria-label="progress of batch ${id}" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${String(p.percent)}" aria-valuetext="${p.label}" data-progress="${id}" data-final="${String(final)}"><svg viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">${segs}</svg><span class="progress-label">${p.label}</span></div>`;
}

/** "First page" / "Next page" links for keyset pagination; `next` is the query string of the next page or null. */
export function pager(base: string, firstQuery: string, nextQuery: string | null, onFirst: boolean): Html {
  if (onFirst && !nextQuery) return html``;
  return html`<div class="pager">${onFirst ? '' : html`<a class="button" href="${base}${firstQuery ? `?${firstQuery}` : ''}">« First page</a>`}${nextQuery ? html`<a class="button" href="${base}?${nextQuery}" rel="next">Next page »</a>` : ''}</div>`;
}
