/** Docs generated from code stay in sync with it. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { supportMatrixMarkdown } from '../src/docs/support-matrix.js';

describe('docs', () => {
  it('docs/support-matrix.md matches the registered descriptors (regenerate with npm run docs:matrix)', () => {
    const committed = readFileSync(new URL('../docs/support-matrix.md', import.meta.url), 'utf8');
    expect(committed).toBe(supportMatrixMarkdown());
  });
});
