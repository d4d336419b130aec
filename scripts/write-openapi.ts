import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderOpenApiYaml } from '../src/api/openapi-document.js';

const target = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../openapi.yaml');
fs.writeFileSync(target, renderOpenApiYaml());
console.log(`wrote ${target}`);
