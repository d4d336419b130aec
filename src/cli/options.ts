import { InvalidArgumentError, Option } from 'commander';

/**
 * Flag declarations shared by the `fanout` commands. Server-side flags have no defaults and no
 * environment fallback here: left undefined when not given, they are resolved (flags over
 * environment over defaults) by the config module. Values are checked just enough to fail with
 * one clear line before anything starts.
 */

export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

function parseIntIn(min: number, max: number, what: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError(`expected ${what}`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`expected ${what}`);
    return n;
  };
}

/** `--task NAME=COMMAND|URL`, repeatable: collected in order into an array. */
export function collectTask(value: string, previous: string[] | undefined): string[] {
  const eq = value.indexOf('=');
  if (eq <= 0 || eq === value.length - 1) {
    throw new InvalidArgumentError('expected NAME=COMMAND|URL, e.g. --task rev=rev');
  }
  return [...(previous ?? []), value];
}

/** `--task-limit NAME:KEY=VALUE[,KEY=VALUE]`, repeatable; checked in full by the config. */
export function collectTaskLimit(value: string, previous: string[] | undefined): string[] {
  if (value.indexOf(':') <= 0) throw new InvalidArgumentError('expected NAME:KEY=VALUE[,KEY=VALUE], e.g. --task-limit api:maxPerSecond=10,maxConcurrent=4');
  return [...(previous ?? []), value];
}

/** Every server-side flag, by the camelCase key commander gives it. */
const SERVER_FLAGS = {
  port: () =>
    new Option('--port <n>', 'port to listen on (PORT, default 8080)').argParser(parseIntIn(0, 65535, 'a port number 0-65535')),
  host: () => new Option('--host <addr>', 'address to bind'),
  database: () => new Option('--database <path|url>', 'SQLite file or postgres:// URL (DATABASE_URL, default ./data/fanout.db)'),
  redis: () => new Option('--redis <url>', 'Redis URL (REDIS_URL)'),
  dataDir: () => new Option('--data-dir <dir>', 'directory for local state (result blobs, a local Redis)'),
  task: () => new Option('--task <NAME=COMMAND|URL>', 'register a task this process may run (repeatable)').argParser(collectTask),
  taskLimit: () =>
    new Option(
      '--task-limit <NAME:KEY=VALUE,...>',
      'limit a task across all workers: maxPerSecond, maxConcurrent, adaptive=true|false (repeatable; FANOUT_TASK_LIMITS)',
    ).argParser(collectTaskLimit),
  concurrency: () =>
    new Option('--concurrency <n>', 'items one worker process runs at once').argParser(parseIntIn(1, 100_000, 'a positive integer')),
  leaseSeconds: () =>
    new Option('--lease-seconds <n>', 'how long a worker holds an item before it is handed out again').argParser(
      parseIntIn(1, 86_400, 'a number of seconds from 1 to 86400'),
    ),
  apiUrl: () => new Option('--api-url <url>', 'URL of the Fanout API the worker reports to'),
  batch: () => new Option('--batch <id>', "serve only this batch's queue (its own workers; FANOUT_BATCH_ID)"),
  exitWhenEmpty: () =>
    new Option('--exit-when-empty', 'with --batch: exit 0 once the batch is done (reads it from the API with FANOUT_TOKEN)'),
  apiKey: () => new Option('--api-key <key>', 'API key the worker authenticates with (FANOUT_API_KEY)'),
  kubeconfig: () => new Option('--kubeconfig <file>', 'run Kubernetes batches on the cluster of this kubeconfig (KUBECONFIG; in a pod: its ServiceAccount)'),
  namespace: () => new Option('--namespace <ns>', 'namespace of batch Jobs unless a batch names another allowed one (FANOUT_NAMESPACE, default "default")'),
  publicUrl: () => new Option('--public-url <url>', 'the API URL pods use to reach Fanout (FANOUT_PUBLIC_URL; default: this process\'s own)'),
  webhookAllow: () => new Option('--webhook-allow <list>', 'hosts or CIDRs webhooks may call although they are private, loopback or link-local (FANOUT_WEBHOOK_ALLOW, comma-separated)'),
  logLevel: () => new Option('--log-level <level>', 'log level (LOG_LEVEL, default info)').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
} satisfies Record<string, () => Option>;

export type ServerFlag = keyof typeof SERVER_FLAGS;

export function serverOptions(...flags: ServerFlag[]): Option[] {
  return flags.map((flag) => SERVER_FLAGS[flag]());
}

/** `--server` and `--api-key`, on every client-side command. */
export function clientOptions(): Option[] {
  return [
    new Option('--server <url>', 'Fanout API base URL').env('FANOUT_SERVER').default(DEFAULT_SERVER),
    new Option('--api-key <key>', 'API key, sent as Authorization: Bearer').env('FANOUT_API_KEY'),
  ];
}

/** `-o` of `fanout get`: table (fitted to 80 columns), wide, json, yaml, name. */
export const OUTPUT_FORMATS = ['table', 'wide', 'json', 'yaml', 'name'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export function outputOption(): Option {
  return new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS);
}
