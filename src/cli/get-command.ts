import type { Batch, Item, Schedule, WebhookDelivery, WebhookEndpoint } from './api-types.js';
import type { Io } from './client-commands.js';
import { FanoutClient, type ClientOptions } from './client.js';
import { CliError } from './errors.js';
import type { OutputFormat } from './options.js';
import { BATCH_TABLE, DELIVERY_TABLE, ITEM_TABLE, renderResourceTable, SCHEDULE_TABLE, WEBHOOK_TABLE, type ResourceTable } from './tables.js';

/**
 * `fanout get RESOURCE [ID] [INDEX]`: every resource the API lists, in every output format.
 * `table` (the default for a list) fits the output width, `wide` adds columns, `json`/`yaml`
 * print the API's objects unchanged (an array for a list, the object for one), `name` the ids.
 * One object asked for by id defaults to YAML, the whole object being what one usually wants.
 */


export interface GetOptions extends ClientOptions {
  selector?: string;
  phase?: string;
  status?: string;
  output?: OutputFormat;
}

type Fetched<T> = { objects: T[]; single: boolean };

interface Resource<T> {
  /** plural, for "No batches found." */
  plural: string;
  table: ResourceTable<T>;
  name(object: T): string;
  /** the flags this resource takes, besides -o */
  flags: Array<'selector' | 'phase' | 'status'>;
  fetch(client: FanoutClient, id: string | undefined, index: string | undefined, opts: GetOptions): Promise<Fetched<T>>;
}

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
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
    if (id !== undefined) return { objects: [await client.getBatch(id)], single: true };
    return { objects: await collect(client.listAllBatches({ labelSelector: opts.selector, phase: opts.phase })), single: false };
  },
};

const ITEMS: Resource<Item> = {
  plural: 'items',
  table: ITEM_TABLE,
  name: (i) => String(i.index),
  flags: ['status'],
  async fetch(client, id, index, opts) {
    if (id === undefined) throw new CliError('items belong to a batch: fanout get items BATCH_ID [INDEX]', 2);
    if (index === undefined) return { objects: await collect(client.listAllItems(id, opts.status)), single: false };
    if (!/^\d+$/.test(index)) throw new CliError(`an item index is a whole number 0 or more, not "${index}"`, 2);
    return { objects: [await client.getItem(id, Number(index))], single: true };
  },
};

const SCHEDULES: Resource<Schedule> = {
  plural: 'schedules',
  table: SCHEDULE_TABLE,
  name: (s) => s.id,
  flags: ['selector'],
  async fetch(client, id, index, opts) {
    noIndex(index, 'fanout get schedules | fanout get schedule ID');
    if (id !== undefined) return { objects: [await client.getSchedule(id)], single: true };
    return { objects: await collect(client.listAllSchedules(opts.selector)), single: false };
  },
};

const WEBHOOKS: Resource<WebhookEndpoint> = {
  plural: 'webhook endpoints',
  table: WEBHOOK_TABLE,
  name: (w) => w.id,
  flags: [],
  async fetch(client, id, index) {
    noIndex(index, 'fanout get webhooks | fanout get webhook ID');
    if (id !== undefined) return { objects: [await client.getWebhookEndpoint(id)], single: true };
    return { objects: await client.listWebhookEndpoints(), single: false };
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
    const owner = id.startsWith('whe_') ? { endpoint: id } : { batch: id };
    return { objects: await client.listDeliveries(owner), single: false };
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
  const fetched = await kind.fetch(new FanoutClient(opts), id, index, opts);
  const format = opts.output ?? (fetched.single ? 'yaml' : 'table');
  io.stdout.write(await printObjects(kind, fetched, format, io));
  if ((format === 'table' || format === 'wide') && fetched.objects.length === 0) io.stderr.write(`No ${kind.plural} found.\n`);
  return 0;
}

/** The text of `fetched` in `format`; empty for an empty table (the caller says so on stderr). */
async function printObjects<T>(kind: Resource<T>, fetched: Fetched<T>, format: OutputFormat, io: Io): Promise<string> {
  const document = fetched.single ? fetched.objects[0] : fetched.objects;
  switch (format) {
    case 'json':
      return `${JSON.stringify(document, null, 2)}\n`;
    case 'yaml':
      return (await import('yaml')).stringify(document);
    case 'name':
      return fetched.objects.map((o) => `${kind.name(o)}\n`).join('');
    case 'table':
    case 'wide':
      if (fetched.objects.length === 0) return '';
      return `${renderResourceTable(kind.table, fetched.objects, Date.now(), { wide: format === 'wide', width: io.width })}\n`;
  }
}
