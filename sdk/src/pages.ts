/** One page of a list answer: its objects and the cursor of the next page (null on the last). */
export interface Page<T> {
  items: T[];
  nextCursor?: string | null;
}

/**
 * Every object of a paginated list, fetched a page at a time by following `nextCursor`: only
 * one page is held, and a consumer that stops early fetches no further page. A server that
 * hands back a cursor it already gave would loop forever: the listing ends there instead.
 */
export async function* paginate<T>(fetchPage: (cursor: string | undefined) => Promise<Page<T>>): AsyncGenerator<T> {
  const seen = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await fetchPage(cursor);
    yield* page.items;
    cursor = page.nextCursor ?? undefined;
    if (cursor !== undefined && seen.has(cursor)) break;
    if (cursor !== undefined) seen.add(cursor);
  } while (cursor !== undefined);
}
