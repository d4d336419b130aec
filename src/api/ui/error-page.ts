import { html } from 'hono/html';
import type { Problem } from '../problems.js';
import { page, type Html } from './layout.js';

/** What a dashboard page answers instead of problem+json: the same title and detail, escaped. */
export function errorPage(p: Problem, loggedIn: boolean): Html {
  return page(
    { title: p.title, nav: loggedIn ? 'batches' : undefined },
    html`<h1>${p.title}</h1><div class="panel"><p>${p.detail}</p><p><a href="/ui/batches">Back to the batches</a></p></div>`,
  );
}
