/** Writes docs/support-matrix.md from the registered backend descriptors. Run: npm run docs:matrix. */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { supportMatrixMarkdown } from '../src/docs/support-matrix.js';

const target = fileURLToPath(new URL('../../docs/support-matrix.md', import.meta.url));
writeFileSync(target, supportMatrixMarkdown());
console.log(`wrote ${target}`);
