/**
 * Access to files embedded at build time by scripts/embed-assets.mjs (src/generated/*): text
 * groups are plain strings, binary groups base64 text. Nothing here reads a file or a URL, so
 * the same code runs in Node, in a browser page and after any bundler.
 */

/**
 * Decodes base64 text (as written by scripts/embed-assets.mjs for binary groups) to bytes.
 * `atob` exists in Node ≥ 16 and every browser; the result is a fresh, non-shared buffer.
 * @example const bytes = base64ToBytes(WASM['flash.wasm']); await WebAssembly.compile(bytes);
 */
export function base64ToBytes(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * The entry `name` of an embedded group, or an error that names the group and what it holds:
 * a name missing here means the file is not in its source folder or the build is stale.
 */
export function embeddedFile(group: Readonly<Record<string, string>>, groupName: string, name: string): string {
  const v = Object.prototype.hasOwnProperty.call(group, name) ? group[name] : undefined;
  if (v === undefined) {
    const have = Object.keys(group);
    throw new Error(`${name} is not among the embedded ${groupName} (${have.length ? have.join(', ') : 'none'}); rebuild (npm run build) after adding a file`);
  }
  return v;
}
