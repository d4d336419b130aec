import { html } from 'hono/html';
import { page, type Html } from './layout.js';

/** The login form: paste an API key; the server answers with a session cookie, never storing the key. */
export function loginPage(o: { error?: string; next?: string }): Html {
  return page(
    { title: 'Log in', notice: o.error ? { text: o.error, error: true } : undefined },
    html`<div class="panel login">
<h1>Fanout dashboard</h1>
<p class="muted">Paste an API key (the one your clients send as <code>Authorization: Bearer …</code>). You see the batches of its tenant.</p>
<form method="post" action="/ui/login">
<label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="off" required autofocus>
<input type="hidden" name="next" value="${o.next ?? '/ui/batches'}">
<button class="primary" type="submit">Log in</button>
</form>
</div>`,
  );
}
