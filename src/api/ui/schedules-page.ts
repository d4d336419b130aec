import { html } from 'hono/html';
import type { ScheduleView } from '../schedule-views.js';
import { formatTime } from './format.js';
import { labelChips, page, pager, statusBadge, type Html } from './layout.js';

export type { ScheduleView };

/** GET /ui/schedules: the tenant's schedules with their next and last runs. */
export function schedulesPage(d: { schedules: ScheduleView[]; nextAfter: string | null; onFirst: boolean }): Html {
  const rows = d.schedules.map((s) => {
    const runs = s.status.recentRuns.slice(0, 5);
    return html`<tr data-schedule="${s.id}">
<td><b>${s.name ?? s.id}</b><div class="mono muted">${s.id}</div><div>${labelChips(s.labels)}</div></td>
<td><code>${s.spec.schedule}</code><div class="muted">${s.spec.timeZone ?? 'UTC'} · ${s.spec.concurrencyPolicy ?? 'Allow'}</div></td>
<td>${s.spec.suspend ? statusBadge('suspended') : html`<span class="muted">active</span>`}</td>
<td>${formatTime(s.status.nextRunTime)}</td>
<td>${formatTime(s.status.lastScheduleTime)}<div class="muted">last success ${formatTime(s.status.lastSuccessfulTime)}</div></td>
<td>${s.status.active.length ? s.status.active.map((id) => html`<div><a class="mono" href="/ui/batches/${id}">${id}</a></div>`) : html`<span class="muted">none</span>`}</td>
<td>${runs.length === 0
      ? html`<span class="muted">no runs yet</span>`
      : html`<ul class="runs">${runs.map(
          (r) => html`<li>${formatTime(r.time)} ${r.batchId ? html`<a class="mono" href="/ui/batches/${r.batchId}">${r.outcome}</a>` : r.outcome}${r.reason ? html` <span class="muted">${r.reason}</span>` : ''}</li>`,
        )}</ul>`}</td>
</tr>`;
  });
  return page(
    { title: 'Schedules', nav: 'schedules' },
    html`<h1>Schedules</h1>
${d.schedules.length === 0
  ? html`<div class="panel muted">No schedules yet (create them with <code>POST /v1/schedules</code>).</div>`
  : html`<table id="schedules"><thead><tr><th>Schedule</th><th>Cron</th><th>State</th><th>Next run (UTC)</th><th>Last run (UTC)</th><th>Active batches</th><th>Recent runs</th></tr></thead><tbody>${rows}</tbody></table>`}
${pager('/ui/schedules', '', d.nextAfter ? new URLSearchParams({ after: d.nextAfter }).toString() : null, d.onFirst)}`,
  );
}
