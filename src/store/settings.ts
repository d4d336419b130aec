import { eq } from 'drizzle-orm';
import type { StoreHandle } from './db.js';
import { settings } from './schema.js';

export function getSetting(store: StoreHandle, key: string): string | null {
  return store.db.select().from(settings).where(eq(settings.key, key)).get()?.value ?? null;
}

export function putSetting(store: StoreHandle, key: string, value: string): void {
  store.db.insert(settings).values({ key, value }).onConflictDoUpdate({ target: settings.key, set: { value } }).run();
}
