/**
 * The program of the spawner helper (see ./command-spawner.ts), run as `node -e SOURCE`. Plain
 * CommonJS in a string, so the same text runs from the sources (tsx) and from dist/ without a
 * file to resolve or a loader to pass on. It only ever runs the operator's task commands that the
 * worker sends it over its IPC channel; nothing else reaches it.
 *
 * Messages in: {t:'run', id, file, args, env, stdin}, {t:'more', id, bytes} (that many stdout
 * bytes were taken; past 1 MiB not yet taken the command's stdout is paused) and {t:'kill', id, signal} (signal to the command's process group). Messages out: {t:'pid', id, pid}, {t:'out'|'err', id, data} and
 * {t:'exit', id, code, signal, error?}. It ignores SIGINT and SIGTERM (the worker decides when
 * commands stop) and, when the worker goes away, SIGKILLs every group it started and exits.
 */
export const SPAWNER_HELPER_SOURCE = String.raw`
'use strict';
const { spawn } = require('node:child_process');
const running = new Map();
const WINDOW = 1024 * 1024;
const killGroup = (pid, signal) => { try { process.kill(-pid, signal); } catch {} };
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.on('disconnect', () => {
  for (const child of running.values()) if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
  process.exit(0);
});
const send = (msg, done) => { try { process.send(msg, done); } catch { if (done) done(); } };
function run(m) {
  const id = m.id;
  let ended = false;
  let spawnError;
  const finish = (code, signal) => {
    if (ended) return;
    ended = true;
    running.delete(id);
    send({ t: 'exit', id, code, signal, error: spawnError && { code: spawnError.code, message: spawnError.message } });
  };
  let child;
  try {
    child = spawn(m.file, m.args, { env: m.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  } catch (error) {
    spawnError = error;
    return finish(null, null);
  }
  running.set(id, child);
  if (child.pid !== undefined) send({ t: 'pid', id, pid: child.pid });
  child.inflight = 0;
  child.stdout.on('data', (data) => {
    // at most WINDOW bytes the worker has not taken yet: then the command waits, as on a pipe
    child.inflight += data.length;
    if (child.inflight > WINDOW) child.stdout.pause();
    send({ t: 'out', id, data });
  });
  child.stderr.on('data', (data) => send({ t: 'err', id, data }));
  child.stdin.on('error', () => {});
  child.stdin.end(m.stdin);
  child.once('error', (error) => {
    spawnError = error;
    if (child.pid === undefined) finish(null, null);
  });
  child.once('close', (code, signal) => finish(code, signal));
}
process.on('message', (m) => {
  if (m.t === 'run') run(m);
  else if (m.t === 'more') {
    const child = running.get(m.id);
    if (child) {
      child.inflight -= m.bytes;
      if (child.inflight <= WINDOW) child.stdout.resume();
    }
  } else if (m.t === 'kill') {
    const child = running.get(m.id);
    if (child && child.pid !== undefined) killGroup(child.pid, m.signal);
  }
});
`;
