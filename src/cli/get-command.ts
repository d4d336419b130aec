import { once } from 'node:events';
import YAML from 'yaml';
import { connect, type Batch, type BatchPhase, type ClientOptions, type FanoutClient, type Item, type ItemStatus, type Schedule, type WebhookDelivery, type WebhookEndpoint } from './api.js';
import type { Io } from './client-commands.js';
import { CliError } from './errors.js';
import type { OutputFormat } from './options.js';
import { BATCH_TABLE, DELIVERY_TABLE, ITEM_TABLE, renderResourceTable, SCHEDULE_TABLE, WEBHOOK_TABLE, type ResourceTable } from './tables.js';

/**
 * `fanout get RESOURCE [ID] [INDEX]`: every resource the API lists, in every output format.
 * `table` (the default for a list) fits the output width, `wide` adds columns, `json`/`yaml`
 * print the API's objects unchanged (an array for a list, the object for one), `name` the ids.
 * One object asked for by id defaults to YAML, the whole object being what one usually wants.
 * Lists in json, yaml and name are written page by page as the API answers them, so a batch of a
 * million items prints in constant memory; a table needs every row to size its columns.
 */

export interface GetOptions extends ClientOptions {
  selector?: string;
  phase?: string;
  status?: string;
  output?: OutputFormat;
}

/** One object asked for by id, or a list read page by page. */
type Fetched<T> = { single: true; object: T } | { single: false; objects: AsyncIterable<T> | T[] };

interface Resource<T> {
  /** plural, for "No batches found." */
  plural: string;
  table: ResourceTable<T>;
  name(object: T): string;
  /** the flags this resource takes, besides -o */
  flags: Array<'selector' | 'phase' | 'status'>;
  fetch(client: FanoutClient, id: string | undefined, index: string | undefined, opts: GetOptions): Promise<Fetched<T>>;
}

async function collect<T>(source: AsyncIterable<T> | T[]): Promise<T[]> {
  const all: T[] = [];
  for await (const x of source) all.push(x);
  return all;
}

function noIndex(index: string | undefined, usage: string): void {
  if (index !== undefined) throw new CliError(`unexpected argument "${index}": ${usage}`, 2);
}

const BATCHES: Resource<Batch> = {
  plural: 'batches',
  table: BATCH_TABLE,
  name: (b) => b.id,
  flags: ['selector', 'phase'],
  async fetch(client, id, index, opts) {
    noIndex(index, 'fanout get batches | fanout get batch ID');
    if (id !== undefined) return { single: true, object: await client.getBatch(id) };
    // The phase is the user's text: the server answers a problem for one it does not know.
    return { single: false, objects: client.listBatches({ labelSelector: opts.selector || undefined, phase: (opts.phase || undefined) as BatchPhase | undefined }) };
  },
};

const ITEMS: Resource<Item> = {
  plural: 'items',
  table: ITEM_TABLE,
  name: (i) => String(i.index),
  flags: ['status'],
  async fetch(client, id, index, opts) {
    if (id === undefined) throw new CliError('items belong to a batch: fanout get items BATCH_ID [INDEX]', 2);
    if (index === undefined) return { single: false, objects: client.listItems(id, { status: (opts.status || undefined) as ItemStatus | undefined, limit: 1000 }) };
    if (!/^\d+$/.test(index)) throw new CliError(`an item index is a whole number 0 or more, not "${index}"`, 2);
    return { single: true, object: await client.getItem(id, Number(index)) };
  },
};

const SCHEDULES: Resource<Schedule> = {
  plural: 'schedules',
  table: SCHEDULE_TABLE,
  name: (s) => s.id,
  flags: ['selector'],
  async fetch(client, id, index, opts) {
    noIndex(index, 'fanout get schedules | fanout get schedule ID');
    if (id !== undefined) return { single: true, object: await client.getSchedule(id) };
    return { single: false, objects: client.listSchedules({ labelSelector: opts.selector || undefined, limit: 500 }) };
  },
};

const WEBHOOKS: Resource<WebhookEndpoint> = {
  plural: 'webhook endpoints',
  table: WEBHOOK_TABLE,
  name: (w) => w.id,
  flags: [],
  async fetch(client, id, index) {
    noIndex(index, 'fanout get webhooks | fanout get webhook ID');
    if (id !== undefined) return { single: true, object: await client.getWebhookEndpoint(id) };
    return { single: false, objects: await client.listWebhookEndpoints() };
  },
};

const DELIVERIES: Resource<WebhookDelivery> = {
  plural: 'webhook deliveries',
  table: DELIVERY_TABLE,
  name: (d) => d.id,
  flags: [],
  async fetch(client, id, index) {
    noIndex(index, 'fanout get deliveries BATCH_ID|WEBHOOK_ID');
    if (id === undefined) throw new CliError('deliveries are listed per batch or per webhook endpoint: fanout get deliveries BATCH_ID|WEBHOOK_ID', 2);
    // Endpoint ids are `whe_…`; anything else is taken for a batch id.
    const owner = id.startsWith('whe_') ? { endpointId: id } : { batchId: id };
    // The newest 500, the API's cap: deliveries are not paged.
    return { single: false, objects: await client.listWebhookDeliveries(owner, { limit: 500 }) };
  },
};

/** Every spelling `get` accepts, kubectl-style: singular, plural and a short form. */
const RESOURCES: Record<string, Resource<never>> = Object.fromEntries(
  (
    [
      [BATCHES, ['batches', 'batch', 'b']],
      [ITEMS, ['items', 'item']],
      [SCHEDULES, ['schedules', 'schedule', 'sched']],
      [WEBHOOKS, ['webhooks', 'webhook', 'webhook-endpoints', 'webhook-endpoint', 'wh']],
      [DELIVERIES, ['deliveries', 'delivery', 'webhook-deliveries']],
    ] as Array<[Resource<never>, string[]]>
  ).flatMap(([resource, names]) => names.map((n) => [n, resource])),
);

/** The resource names for `fanout get --help` and errors. */
export const GET_RESOURCES = 'batches, items, schedules, webhooks, deliveries';

const FLAG_NAMES = { selector: '-l/--selector', phase: '--phase', status: '--status' } as const;

export async function getCommand(resource: string, id: string | undefined, index: string | undefined, opts: GetOptions, io: Io): Promise<number> {
  const kind = RESOURCES[resource.toLowerCase()] as Resource<unknown> | undefined;
  if (!kind) throw new CliError(`unknown resource "${resource}": use one of ${GET_RESOURCES}`, 2);
  for (const flag of ['selector', 'phase', 'status'] as const) {
    if (opts[flag] !== undefined && !kind.flags.includes(flag)) throw new CliError(`${FLAG_NAMES[flag]} does not apply to ${kind.plural}`, 2);
  }
  const filtered = opts.selector !== undefined || opts.phase !== undefined || opts.status !== undefined;
  if (filtered && (kind === ITEMS ? index !== undefined : id !== undefined)) throw new CliError('filters apply to a list: drop the ID or the filters', 2);
  const fetched = await kind.fetch(connect(opts), id, index, opts);
  const format = opts.output ?? (fetched.single ? 'yaml' : 'table');
  if (fetched.single) {
    await write(io, printObjects(kind, [fetched.object], format, io, fetched.object));
    return 0;
  }
  if (format === 'table' || format === 'wide') {
    const objects = await collect(fetched.objects);
    await write(io, printObjects(kind, objects, format, io, objects));
    if (objects.length === 0) io.stderr.write(`No ${kind.plural} found.\n`);
    return 0;
  }
  await streamList(kind, fetched.objects, format, io);
  return 0;
}

/** The text of `objects` in `format` (`document`: what json and yaml print); empty for an empty table. */
function printObjects<T>(kind: Resource<T>, objects: T[], format: OutputFormat, io: Io, document: unknown): string {
  switch (format) {
    case 'json':
      return `${JSON.stringify(document, null, 2)}\n`;
    case 'yaml':
      return YAML.stringify(document);
    case 'name':
      return objects.map((o) => `${kind.name(o)}\n`).join('');
    case 'table':
    case 'wide':
      if (objects.length === 0) return '';
      return `${renderResourceTable(kind.table, objects, Date.now(), { wide: format === 'wide', width: io.width })}\n`;
  }
}

/**
 * A list in json, yaml or name, one object at a time: the same text as printing the whole
 * array at once (a JSON array indented by 2, a YAML sequence), without holding the list.
 */
async function streamList<T>(kind: Resource<T>, objects: AsyncIterable<T> | T[], format: 'json' | 'yaml' | 'name', io: Io): Promise<void> {
  let count = 0;
  for await (const object of objects) {
    if (format === 'json') await write(io, `${count === 0 ? '[\n' : ',\n'}${JSON.stringify(object, null, 2).replace(/^/gm, '  ')}`);
    else if (format === 'yaml') await write(io, YAML.stringify([object]));
    else await write(io, `${kind.name(object)}\n`);
    count++;
  }
  if (format === 'json') await write(io, count === 0 ? '[]\n' : '\n]\n');
  else if (format === 'yaml' && count === 0) await write(io, '[]\n');
}

/** Writes and waits for the stream to drain when its buffer is full (a slow pipe holds the pages back). */
async function write(io: Io, text: string): Promise<void> {
  if (text && !io.stdout.write(text)) await once(io.stdout, 'drain');
}
