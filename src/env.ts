/**
 * Environment variables where the runtime has them (Node), `undefined` elsewhere (browsers):
 * the library's switches (`SDPA_*`) are read through this one helper.
 */
export function envVar(name: string): string | undefined {
  return (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name];
}

let totalMemory: { readonly bytes: number | undefined } | undefined;

/**
 * The machine's physical memory (`os.totalmem()`), read once per process: it does not change while
 * the process runs, and reading it is a /proc/meminfo parse (~20–70 µs) that the memory-budget
 * constraints would otherwise pay on every call. `undefined` outside Node (browsers).
 */
export function totalMemoryBytes(): number | undefined {
  if (!totalMemory) {
    const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
    const os = proc?.getBuiltinModule?.('node:os') as { totalmem(): number } | undefined;
    totalMemory = { bytes: os ? os.totalmem() : undefined };
  }
  return totalMemory.bytes;
}
