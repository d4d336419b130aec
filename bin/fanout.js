#!/usr/bin/env node
// Runs the TypeScript CLI straight from the repository: the repo is not compiled, so tsx's
// loader is registered first, then src/cli/index.ts is imported through it.
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
await import('../src/cli/index.ts');
