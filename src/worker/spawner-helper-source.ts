/**
 * The program of the spawner helper (see ./command-spawner.ts), run as `node -e SOURCE`. Plain
 * CommonJS in a string, so the same text runs from the sources (tsx) and from dist/ without a
 * file to resolve or a loader to pass on. It only ever runs the operator's task commands that the
 * worker sends it over its IPC channel; nothing else reaches it.
 *
 * Messages in: {t:'env', env} (the worker's environment, once, before any command),
 * {t:'run', id, file, args, env, stdin} (`env`: what the item adds to the worker's environment),
 * {t:'more', id, bytes} (that many stdout bytes were taken; past 1 MiB not yet taken the
 * command's stdout is paused) and {t:'kill', id, signal} (signal to the command's process group).
 * Messages out: {t:'pid', id, pid}, {t:'out'|'err', id, data} and
 * {t:'exit', id, code, signal, error?, out?, err?}.
 *
 * Few messages per command, since each one wakes both processes: the output of a command that
 * ends with less than SMALL bytes on a stream travels in its 'exit' message (streamed as 'out'
 * and 'err' only past that), and its 'pid' is sent only once it has run PID_AFTER_MS (the worker
 * needs it only to kill what is left when it exits; the helper kills its groups itself when the
 * worker goes away).
 *
 * It ignores SIGINT and SIGTERM (the worker decides when commands stop) and, when the worker
 * goes away, SIGKILLs every group it started and exits.
 */
export const SPAWNER_HELPER_SOURCE = String.raw`
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const running = new Map();
const WINDOW = 1024 * 1024;
const SMALL = 64 * 1024;
const PID_AFTER_MS = 50;
let baseEnv = process.env;
const killGroup = (pid, signal) => { try { process.kill(-pid, signal); } catch {} };
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.on('disconnect', () => {
  for (const child of running.values()) if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
  process.exit(0);
});
const send = (msg, done) => { try { process.send(msg, done); } catch { if (done) done(); } };

// A bare program name is looked up in PATH once, not by execvp on every spawn (one failed exec
// per PATH entry before it). Only hits are kept: a program not found is looked up again next time.
const found = new Map();
function resolveProgram(file, env) {
  if (file.includes('/')) return file;
  const dirs = env.PATH === undefined ? '/usr/local/bin:/usr/bin:/bin' : env.PATH;
  const key = dirs + '\0' + file;
  const hit = found.get(key);
  if (hit !== undefined) return hit;
  for (const dir of dirs.split(':')) {
    if (dir === '' || !path.isAbsolute(dir)) return file; // relative to the cwd: leave it to execvp
    const candidate = path.join(dir, file);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (!fs.statSync(candidate).isFile()) continue;
    } catch { continue; }
    found.set(key, candidate);
    return candidate;
  }
  return file;
}

// One stream of a command: held here while small, then streamed.
function collector(id, kind) {
  let held = [];
  let size = 0;
  return {
    push(data) {
      if (held === null) return send({ t: kind, id, data });
      held.push(data);
      size += data.length;
      if (size < SMALL) return;
      for (const chunk of held) send({ t: kind, id, data: chunk });
      held = null;
    },
    rest() {
      const out = held === null || size === 0 ? undefined : held.length === 1 ? held[0] : Buffer.concat(held);
      held = null;
      return out;
    },
  };
}

function run(m) {
  const id = m.id;
  let ended = false;
  let spawnError;
  let pidTimer;
  const env = Object.assign({}, baseEnv, m.env);
  const out = collector(id, 'out');
  const err = collector(id, 'err');
  const finish = (code, signal) => {
    if (ended) return;
    ended = true;
    clearTimeout(pidTimer);
    running.delete(id);
    send({ t: 'exit', id, code, signal, error: spawnError && { code: spawnError.code, message: spawnError.message }, out: out.rest(), err: err.rest() });
  };
  let child;
  try {
    child = spawn(resolveProgram(m.file, env), m.args, { argv0: m.file, env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  } catch (error) {
    spawnError = error;
    return finish(null, null);
  }
  running.set(id, child);
  if (child.pid !== undefined) {
    pidTimer = setTimeout(() => send({ t: 'pid', id, pid: child.pid }), PID_AFTER_MS);
  }
  child.inflight = 0;
  child.stdout.on('data', (data) => {
    // at most WINDOW bytes the worker has not taken yet: then the command waits, as on a pipe
    child.inflight += data.length;
    if (child.inflight > WINDOW) child.stdout.pause();
    out.push(data);
  });
  child.stderr.on('data', (data) => err.push(data));
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
  else if (m.t === 'env') baseEnv = m.env;
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
