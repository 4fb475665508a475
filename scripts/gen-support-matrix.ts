/** Writes docs/support-matrix.md from the registered backend descriptors. Run: npm run docs:matrix. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { supportMatrixMarkdown } from '../src/docs/support-matrix.js';

const target = fileURLToPath(new URL('../../docs/support-matrix.md', import.meta.url));
mkdirSync(dirname(target), { recursive: true });
writeFileSync(target, supportMatrixMarkdown());
console.log(`wrote ${target}`);
