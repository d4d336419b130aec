import { readFile, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { CliError } from './errors.js';

/**
 * Reads what `fanout submit -f` points at. JSON and YAML specs are parsed here (the API
 * validates them); an NDJSON file is only checked to exist, because it is streamed to the API
 * and may be far larger than memory.
 */

export type SpecSource = { kind: 'document'; spec: unknown } | { kind: 'ndjson'; path: string };

const NDJSON_EXTENSIONS = new Set(['.ndjson', '.jsonl']);

/** `file` is a path, or `-` for a JSON spec on stdin. */
export async function readSpecSource(file: string, stdin: NodeJS.ReadableStream = process.stdin): Promise<SpecSource> {
  if (file === '-') return { kind: 'document', spec: parseJson(await readStream(stdin), 'stdin') };

  const ext = extname(file).toLowerCase();
  if (NDJSON_EXTENSIONS.has(ext)) {
    const info = await stat(file).catch((err: unknown) => {
      throw unreadable(file, err);
    });
    if (!info.isFile()) throw new CliError(`cannot read ${file}: not a file`);
    return { kind: 'ndjson', path: file };
  }

  const text = await readFile(file, 'utf8').catch((err: unknown) => {
    throw unreadable(file, err);
  });
  if (ext === '.json') return { kind: 'document', spec: parseJson(text, file) };
  // YAML is a superset of JSON, so any other extension is read as YAML too.
  return { kind: 'document', spec: await parseYaml(text, file) };
}

function parseJson(text: string, source: string): unknown {
  if (text.trim() === '') throw new CliError(`${source} is empty: expected a JSON batch spec`);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new CliError(`${source}: invalid JSON: ${(err as Error).message}`);
  }
}

async function parseYaml(text: string, source: string): Promise<unknown> {
  // yaml is loaded only when needed: most commands never parse YAML and startup stays fast.
  const { parseDocument } = await import('yaml');
  const doc = parseDocument(text);
  const error = doc.errors[0];
  if (error) {
    // Pretty messages end their first line with " at line L, column C:" and add a code frame.
    const message = (error.message.split('\n', 1)[0] ?? '').replace(/ at line \d+, column \d+:$/, '');
    const where = error.linePos?.[0] ? ` (line ${error.linePos[0].line}, column ${error.linePos[0].col})` : '';
    throw new CliError(`${source}: invalid YAML${where}: ${message}`);
  }
  const spec = doc.toJS() as unknown;
  if (spec === null || spec === undefined) throw new CliError(`${source} is empty: expected a batch spec`);
  return spec;
}

function unreadable(file: string, err: unknown): CliError {
  const code = (err as NodeJS.ErrnoException).code;
  const reason =
    code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
  return new CliError(`cannot read ${file}: ${reason}`);
}

async function readStream(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}
