import { createRequire } from 'node:module';
import path from 'node:path';
import { packageRoot } from '../package-root.js';
import { Command, InvalidArgumentError, Option, type Argument } from 'commander';
import type { ClientOptions } from './api.js';
import type { GetOptions } from './get-command.js';
import { clientOptions, outputOption, serverOptions, type ServerFlag } from './options.js';

/**
 * The `fanout` command tree. Server-side commands hand their flags, untouched, to
 * src/main/entrypoints.ts; client-side commands call the API over HTTP. Command modules are
 * imported only when their command runs, so `fanout --help` and the client commands start fast.
 */

const { version } = createRequire(import.meta.url)(path.join(packageRoot, 'package.json')) as { version: string };

const SERVER_COMMANDS: Array<{ name: 'up' | 'api' | 'dispatcher'; summary: string; flags: ServerFlag[] }> = [
  {
    name: 'up',
    summary: 'run API, dispatcher and workers in one process (SQLite; a local Redis when REDIS_URL is unset)',
    flags: ['port', 'host', 'database', 'redis', 'dataDir', 'task', 'taskLimit', 'concurrency', 'leaseSeconds', 'kubeconfig', 'namespace', 'publicUrl', 'webhookAllow', 'logLevel'],
  },
  {
    name: 'api',
    summary: 'run the HTTP API',
    flags: ['port', 'host', 'database', 'redis', 'dataDir', 'kubeconfig', 'namespace', 'webhookAllow', 'logLevel'],
  },
  {
    name: 'dispatcher',
    summary: 'run the dispatcher (the controller that releases items and finalizes batches)',
    flags: ['port', 'host', 'database', 'redis', 'dataDir', 'leaseSeconds', 'kubeconfig', 'namespace', 'publicUrl', 'webhookAllow', 'logLevel'],
  },
];

/** Kept here, not in get-command.ts, so `fanout --help` does not load the command modules. */
const GET_RESOURCES = 'batches | batch | items | item | schedules | schedule | webhooks | webhook | deliveries';

const GET_HELP = `
Output (-o): table, the default for a list, fits 80 columns (or COLUMNS if
wider); wide adds columns and is never cut; json and yaml print the API's
objects (an array for a list; one object by id defaults to yaml); name prints
the ids.

Examples:
  $ fanout get batches -l jobgroup=jobexample --phase Failed
  $ fanout get batch ID -o json
  $ fanout get items BATCH_ID --status failed -o wide
  $ fanout get item BATCH_ID 7
  $ fanout get schedules -o wide
  $ fanout get webhooks
  $ fanout get deliveries BATCH_ID|WEBHOOK_ID`;

const EXAMPLES = `
Examples:
  $ fanout up --task rev=rev
  $ fanout submit -f batch.yaml --wait
  $ fanout get batches -l jobgroup=jobexample
  $ fanout results <id> > results.ndjson
  $ fanout delete -l jobgroup=jobexample`;

/** `<id>`, `[id]`, `[ids...]`, as commander writes arguments in usage lines. */
function argumentTerm(arg: Argument): string {
  const name = arg.name() + (arg.variadic ? '...' : '');
  return arg.required ? `<${name}>` : `[${name}]`;
}

/** Sets the exit code from a command's answer, leaving the process to end on its own. */
function exitWith(code: number): void {
  process.exitCode = code;
}

function addOptions(cmd: Command, options: Option[]): Command {
  for (const option of options) cmd.addOption(option);
  return cmd;
}

function parseNonNegativeInt(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number 0 or more');
  return Number(value);
}

/** Builds the command tree; `index.ts` parses `process.argv` with it. */
export function buildProgram(): Command {
  const program = new Command('fanout')
    .description('Fan out a batch of work items, run them in parallel, track each one to a result.')
    .version(version)
    .addHelpText('after', EXAMPLES)
    // Parse errors are thrown, not printed and exited on: index.ts prints them (errors.ts, fitted
    // to the width, with --help pointed to) and exits 2. Set before the commands are added, which
    // inherit both settings.
    .exitOverride()
    .configureOutput({ outputError: () => {} })
    // Commands listed as `get <resource> [id] [index]`, without `[options]`, so their
    // descriptions still have the room to wrap within 80 columns.
    .configureHelp({ subcommandTerm: (cmd) => [cmd.name(), ...cmd.registeredArguments.map(argumentTerm)].join(' ') });

  for (const { name, summary, flags } of SERVER_COMMANDS) {
    addOptions(program.command(name).description(summary), serverOptions(...flags)).action(async (_opts, cmd: Command) => {
      const { runServer } = await import('../main/entrypoints.js');
      await runServer(name, cmd.opts());
    });
  }

  addOptions(
    program.command('worker').description('lease items from Redis and run them with the registered tasks'),
    serverOptions('apiUrl', 'apiKey', 'redis', 'task', 'taskLimit', 'concurrency', 'batch', 'exitWhenEmpty', 'leaseSeconds', 'logLevel'),
  ).action(async (_opts, cmd: Command) => {
    const { runWorkerCommand } = await import('../main/entrypoints.js');
    await runWorkerCommand(cmd.opts());
  });

  program
    .command('exec')
    .description('run one item of an indexed-job batch in its pod: GET the item, run CMD with it, PUT its stdout')
    .argument('[command...]', 'CMD [ARGS...] after --; {{ field }} placeholders are filled from the item')
    // CMD's own options (`-- ls -la`) are operands, not options of exec
    .allowUnknownOption()
    .addHelpText(
      'after',
      `
Environment: FANOUT_API_URL, FANOUT_BATCH_ID, FANOUT_TOKEN, JOB_COMPLETION_INDEX
(required), FANOUT_INDEX_OFFSET (default 0). Exit code: CMD's, 128+N when CMD
was killed by signal N, 1 when the item could not be read or its result stored,
2 for missing environment or no CMD.

Examples:
  $ fanout exec -- echo 'Processing {{ url }}'
  # the item's text as an argument, never as shell code:
  $ fanout exec -- sh -c 'curl -fsS "$1" | wc -c' sh '{{ url }}'`,
    )
    .action(async (command: string[]) => {
      const { execCommand } = await import('./exec-command.js');
      // exit now: a pod must end when its item is done, whatever handle is left open
      process.exit(await execCommand(command));
    });

  addOptions(program.command('migrate').description('apply database migrations and exit'), serverOptions('database', 'dataDir', 'logLevel')).action(
    async (_opts, cmd: Command) => {
      const { runMigrate } = await import('../main/entrypoints.js');
      await runMigrate(cmd.opts());
    },
  );

  addOptions(
    program
      .command('submit')
      .description('submit a batch spec (.json, .yaml, .ndjson streamed, or - for JSON on stdin) and print its id')
      .requiredOption('-f, --file <path>', 'batch spec file, or - for stdin')
      .option('--wait', 'wait until the batch is final; exit 0 only if it Succeeded')
      .option('--idempotency-key <key>', 'sent as Idempotency-Key, so a retried submit creates one batch'),
    clientOptions(),
  ).action(async (opts: ClientOptions & { file: string; wait?: boolean; idempotencyKey?: string }) => {
    const { submitCommand } = await import('./client-commands.js');
    exitWith(await submitCommand(opts));
  });

  addOptions(
    program.command('wait').description('follow a batch with a progress bar until it is final; exit 0 only if it Succeeded').argument('<id>', 'batch id'),
    clientOptions(),
  ).action(async (id: string, opts: ClientOptions) => {
    const { waitCommand } = await import('./client-commands.js');
    exitWith(await waitCommand(id, opts));
  });

  addOptions(
    program
      .command('get')
      .description('list a resource as a table, or show one object (YAML by default)')
      .argument('<resource>', GET_RESOURCES)
      .argument('[id]', 'the object (batch, schedule, webhook) or, for items and deliveries, its batch or webhook')
      .argument('[index]', 'with items: one item of the batch')
      .option('-l, --selector <selector>', 'label selector, e.g. jobgroup=jobexample,tier!=test')
      .option('--phase <phase>', 'only batches in this phase (Pending, Running, Succeeded, …)')
      .addOption(new Option('--status <status>', 'only items with this status').choices(['pending', 'running', 'succeeded', 'failed', 'cancelled']))
      .addHelpText('after', GET_HELP),
    [outputOption(), ...clientOptions()],
  ).action(async (resource: string, id: string | undefined, index: string | undefined, opts: GetOptions) => {
    const { getCommand } = await import('./get-command.js');
    const { processIo } = await import('./client-commands.js');
    exitWith(await getCommand(resource, id, index, opts, processIo));
  });

  addOptions(program.command('results').description('stream the NDJSON results of a batch').argument('<id>', 'batch id'), clientOptions()).action(
    async (id: string, opts: ClientOptions) => {
      const { resultsCommand } = await import('./client-commands.js');
      exitWith(await resultsCommand(id, opts));
    },
  );

  addOptions(program.command('cancel').description('cancel a batch').argument('<id>', 'batch id'), clientOptions()).action(
    async (id: string, opts: ClientOptions) => {
      const { cancelCommand } = await import('./client-commands.js');
      exitWith(await cancelCommand(id, opts));
    },
  );

  addOptions(
    program.command('retry').description('re-run the failed items of a finished batch').argument('<id>', 'batch id'),
    clientOptions(),
  ).action(async (id: string, opts: ClientOptions) => {
    const { retryCommand } = await import('./client-commands.js');
    exitWith(await retryCommand(id, opts));
  });

  addOptions(
    program
      .command('logs')
      .description("print each attempt of one item: a header line and the attempt's error (the stderr tail)")
      .argument('<id>', 'batch id')
      .requiredOption('--index <n>', 'the item index', parseNonNegativeInt)
      .option('--attempt <k>', 'only this attempt', parseNonNegativeInt),
    clientOptions(),
  ).action(async (id: string, opts: ClientOptions & { index: number; attempt?: number }) => {
    const { logsCommand } = await import('./client-commands.js');
    exitWith(await logsCommand(id, opts));
  });

  addOptions(
    program
      .command('delete')
      .description('delete batches by id, or every batch matching -l SELECTOR')
      .argument('[ids...]', 'batch ids')
      .option('-l, --selector <selector>', 'delete every batch matching this label selector'),
    clientOptions(),
  ).action(async (ids: string[], opts: ClientOptions & { selector?: string }) => {
    const { deleteCommand } = await import('./client-commands.js');
    exitWith(await deleteCommand(ids, opts));
  });

  const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];
  const adminKeyOption = () => new Option('--admin-key <key>', 'the server admin key').env('FANOUT_ADMIN_KEY');
  const admin = program.command('admin').description("the server admin's calls: tenants and their API keys (needs FANOUT_ADMIN_KEY)");
  addOptions(
    admin
      .command('tenants')
      .description('create, list, get, update or disable tenants')
      .argument('<action>', 'create NAME | list | get ID | update ID | disable ID')
      .argument('[arg]', 'the NAME (create) or the tenant ID')
      .option('--name <name>', 'update: the new name')
      .option('--weight <n>', 'fair-share weight, 1 to 1000')
      .option('--quota <NAME=N|unlimited>', 'a quota over the server default (repeatable), e.g. runningItems=100', collect)
      .option('--disable', 'update: disable the tenant (its keys are refused)')
      .option('--enable', 'update: enable it again'),
    [outputOption(), adminKeyOption(), ...clientOptions()],
  ).action(async (action: string, arg: string | undefined, opts) => {
    const { adminTenantsCommand } = await import('./tenant-commands.js');
    const { processIo } = await import('./client-commands.js');
    exitWith(await adminTenantsCommand(action, arg, opts, processIo));
  });
  const keyOptions = (cmd: Command) =>
    cmd
      .argument('<action>', 'create | list | revoke KEY_ID')
      .argument('[keyId]', 'revoke: the key id')
      .option('--scope <scope>', 'create: read, write or admin (repeatable; default read and write)', collect)
      .option('--name <name>', 'create: a name to tell the key apart')
      .option('--expires-at <time>', 'create: an RFC 3339 time the key stops working');
  addOptions(
    keyOptions(admin.command('keys').description("create, list or revoke a tenant's API keys")).requiredOption('--tenant <id>', 'the tenant'),
    [outputOption(), adminKeyOption(), ...clientOptions()],
  ).action(async (action: string, keyId: string | undefined, opts) => {
    const { keysCommand } = await import('./tenant-commands.js');
    const { processIo } = await import('./client-commands.js');
    exitWith(await keysCommand(true, action, keyId, opts, processIo));
  });
  addOptions(keyOptions(program.command('keys').description("create, list or revoke your tenant's API keys (an admin-scoped --api-key)")), [outputOption(), ...clientOptions()]).action(
    async (action: string, keyId: string | undefined, opts) => {
      const { keysCommand } = await import('./tenant-commands.js');
      const { processIo } = await import('./client-commands.js');
      exitWith(await keysCommand(false, action, keyId, opts, processIo));
    },
  );
  addOptions(
    program
      .command('audit')
      .description('the audit log of mutating calls, newest first (your tenant; with --admin-key every tenant or --tenant)')
      .option('--tenant <id>', 'with --admin-key: one tenant')
      .option('--limit <n>', 'how many events (1 to 500, default 100)', parseNonNegativeInt),
    [outputOption(), new Option('--admin-key <key>', 'the server admin key instead of an API key (not read from the environment here)'), ...clientOptions()],
  ).action(async (opts) => {
    const { auditCommand } = await import('./tenant-commands.js');
    const { processIo } = await import('./client-commands.js');
    exitWith(await auditCommand(opts, processIo));
  });

  program
    .command('completion')
    .description('print a shell completion script (bash or zsh) for every fanout command and option')
    .argument('<shell>', 'bash | zsh')
    .addHelpText('after', '\nLoad it with: source <(fanout completion bash)   # or zsh\n(e.g. in ~/.bashrc or ~/.zshrc)')
    .action(async (shell: string) => {
      const { completionScript } = await import('./completion.js');
      process.stdout.write(completionScript(program, shell));
    });

  return program;
}
