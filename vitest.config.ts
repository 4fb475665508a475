import { defineConfig } from 'vitest/config';
// Tests import the library from source, which imports the embedded assets (src/generated/, build
// output): regenerate them for every run, so an edited .wgsl is what the tests compile.
// @ts-expect-error a plain .mjs script without declarations
import { embedAssets } from './scripts/embed-assets.mjs';

embedAssets();

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores here: run files in parallel forks, tests in a file in order.
    pool: 'forks',
    reporters: ['default'],
  },
});
