import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Where the SDK's generated types live, relative to the repository root. */
export const sdkSchemaPath = path.join(root, 'sdk/src/generated/schema.ts');

/**
 * Runs openapi-typescript on the repository's openapi.yaml and writes the SDK's types to
 * `target` (the committed file by default; the staleness test passes a temp file). Fields with
 * a server-side default stay optional (`--default-non-nullable false`): the same types describe
 * what a client may send, where such fields can be left out.
 */
export function generateSdkSchema(target = sdkSchemaPath): void {
  const bin = path.join(root, 'node_modules/.bin/openapi-typescript');
  execFileSync(bin, [path.join(root, 'openapi.yaml'), '--default-non-nullable', 'false', '-o', target], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  generateSdkSchema();
  console.log(`wrote ${sdkSchemaPath}`);
}
