/* Fanout dashboard: live progress bars, no framework and no build. Served as /ui/assets/dashboard.js. */
'use strict';

/* The same computation as progressOf in src/api/ui/format.ts (a unit test runs both on a table). */
function fanoutProgress(counts, final) {
  var done = counts.succeeded + counts.failed + counts.cancelled;
  var percent = counts.total > 0 ? Math.min(100, Math.floor((done * 100) / counts.total)) : final ? 100 : 0;
  var pct = function (n) {
    return counts.total > 0 ? Math.round((n / counts.total) * 10000) / 100 : 0;
  };
  return {
    percent: percent,
    segments: { succeeded: pct(counts.succeeded), failed: pct(counts.failed), cancelled: pct(counts.cancelled), running: pct(counts.running) },
    label: done + '/' + counts.total + ' (' + percent + '%)',
  };
}

var FANOUT_FINAL = ['Succeeded', 'Failed', 'Cancelled'];
var FANOUT_SEGMENTS = ['succeeded', 'failed', 'cancelled', 'running'];

function fanoutEach(selector, fn) {
  Array.prototype.forEach.call(document.querySelectorAll(selector), fn);
}

/* Draws a batch's {phase, counts} on every bar, phase badge and count cell of that batch. */
function fanoutShow(id, data) {
  var final = FANOUT_FINAL.indexOf(data.phase) >= 0;
  var p = fanoutProgress(data.counts, final);
  var key = '"' + CSS.escape(id) + '"';
  fanoutEach('[data-progress=' + key + ']', function (bar) {
    bar.setAttribute('aria-valuenow', String(p.percent));
    bar.setAttribute('aria-valuetext', p.label);
    bar.setAttribute('data-final', String(final));
    var x = 0;
    FANOUT_SEGMENTS.forEach(function (k) {
      var r = bar.querySelector('[data-seg=' + k + ']');
      if (r) {
        r.setAttribute('x', String(x));
        r.setAttribute('width', String(p.segments[k]));
      }
      x += p.segments[k];
    });
    var label = bar.querySelector('.progress-label');
    if (label) label.textContent = p.label;
  });
  fanoutEach('[data-phase-of=' + key + ']', function (el) {
    el.textContent = data.phase;
    el.className = 'phase phase-' + data.phase;
  });
  fanoutEach('[data-count-of=' + key + ']', function (el) {
    var k = el.getAttribute('data-count');
    if (k && Object.prototype.hasOwnProperty.call(data.counts, k)) el.textContent = String(data.counts[k]);
  });
}

/* Batch page: follow the batch's event stream; reload once it is final so the item table is current. */
function fanoutFollow(id, url) {
  var es = new EventSource(url);
  var on = function (ev) {
    fanoutShow(id, JSON.parse(ev.data));
    if (ev.type === 'done') {
      es.close();
      setTimeout(function () {
        location.reload();
      }, 300);
    }
  };
  es.addEventListener('progress', on);
  es.addEventListener('done', on);
  es.onerror = function () {
    // EventSource reconnects by itself; it gives up (CLOSED) on a 401 or 404: let the server say why.
    if (es.readyState === 2) location.reload();
  };
}

/* Batch list: poll the progress of the unfinished batches shown until none is left. */
function fanoutPoll(url) {
  var tick = function () {
    var ids = [];
    fanoutEach('[data-progress][data-final=false]', function (el) {
      ids.push(el.getAttribute('data-progress'));
    });
    if (ids.length === 0) return;
    fetch(url + '?ids=' + encodeURIComponent(ids.join(',')), { credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then(function (r) {
        if (r.status === 401) location.href = '/ui/login';
        return r.ok ? r.json() : null;
      })
      .then(function (body) {
        if (body) body.items.forEach(function (b) { fanoutShow(b.id, b); });
      })
      .catch(function () {})
      .then(function () {
        setTimeout(tick, 1000);
      });
  };
  setTimeout(tick, 1000);
}

if (typeof document !== 'undefined') {
  document.addEventListener('DOMContentLoaded', function () {
    var d = document.body.dataset;
    if (d.follow && d.batch) fanoutFollow(d.batch, d.follow);
    if (d.poll) fanoutPoll(d.poll);
  });
}
