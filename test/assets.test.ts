/**
 * Assets embedded at build time (scripts/embed-assets.mjs): every shaders/*.wgsl is in the
 * generated module, byte for byte; binary groups round-trip through base64; stale output is
 * detected; markup never reaches the shader compiler.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { SHADERS } from '../src/generated/shaders.js';
import { base64ToBytes, embeddedFile } from '../src/assets.js';
import { assertWgsl, loadShader, registerShaderSource } from '../src/webgpu/programs.js';
// @ts-expect-error a plain .mjs script without declarations
import { embedAssets } from '../scripts/embed-assets.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

describe('embedded assets', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'sdpa-assets-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('holds every shaders/*.wgsl, byte for byte, and nothing else', () => {
    const files = readdirSync(join(ROOT, 'shaders')).filter((f) => f.endsWith('.wgsl')).sort();
    expect(Object.keys(SHADERS).sort()).toEqual(files);
    for (const f of files) expect(SHADERS[f], f).toBe(readFileSync(join(ROOT, 'shaders', f), 'utf8'));
  });

  it('embeds a binary group as base64 that decodes to the same bytes; --check sees a stale module', async () => {
    mkdirSync(join(tmp, 'bin'));
    const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 37 + (i >> 3)) & 0xff);
    writeFileSync(join(tmp, 'bin', 'kernel.wasm'), bytes);
    writeFileSync(join(tmp, 'bin', 'notes.txt'), 'not part of the group');
    const group = { dir: 'bin', match: /\.wasm$/, encoding: 'base64', out: 'gen/bin.ts', name: 'BIN', what: 'test binaries' };
    expect(embedAssets({ root: tmp, groups: [group] })).toEqual(['gen/bin.ts']);
    expect(embedAssets({ root: tmp, groups: [group] })).toEqual([]); // unchanged: not rewritten
    const mod = (await import(pathToFileURL(join(tmp, 'gen/bin.ts')).href)) as { BIN: Record<string, string> };
    expect(Object.keys(mod.BIN)).toEqual(['kernel.wasm']);
    expect(base64ToBytes(mod.BIN['kernel.wasm'])).toEqual(bytes);
    writeFileSync(join(tmp, 'bin', 'kernel.wasm'), bytes.subarray(1));
    expect(embedAssets({ root: tmp, groups: [group], check: true })).toEqual(['gen/bin.ts']);
  });

  it('a missing entry names the group and what it holds', () => {
    expect(() => embeddedFile(SHADERS, 'shaders', 'nope.wgsl')).toThrow(/nope\.wgsl is not among the embedded shaders \(.*math\.wgsl.*\); rebuild/);
  });

  it('refuses markup before the shader compiler sees it', () => {
    expect(() => assertWgsl('math.wgsl', '<!doctype html><html>')).toThrow('shader math.wgsl: got markup, not WGSL (it starts with "<!doctype html>")');
    expect(assertWgsl('math.wgsl', SHADERS['math.wgsl'])).toBe(SHADERS['math.wgsl']);
  });
});

describe('shaders that are not shipped (bench-only kernels of scripts/)', () => {
  it('register by name, get the shared includes, and cannot replace a shipped shader', async () => {
    await registerShaderSource('lab-test.wgsl', '//#include "common.wgsl"\n@compute @workgroup_size(1) fn main() {}');
    const text = await loadShader('lab-test.wgsl');
    expect(text.startsWith(SHADERS['common.wgsl'])).toBe(true);
    expect(text.endsWith('fn main() {}')).toBe(true);
    await expect(registerShaderSource('math.wgsl', 'fn f() {}')).rejects.toThrow('math.wgsl is a shipped shader (shaders/math.wgsl) and cannot be replaced');
    await expect(registerShaderSource('page.wgsl', '<html>')).rejects.toThrow('got markup, not WGSL');
  });
});
