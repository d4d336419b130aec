import { run, value, type Op } from './op.js';

export function* getSetting(key: string): Op<string | null> {
  return (yield* value<string>('SELECT value FROM settings WHERE key = ?', key)) ?? null;
}

export function* putSetting(key: string, v: string): Op<void> {
  yield* run('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', key, v);
}
