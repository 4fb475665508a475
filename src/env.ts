/**
 * Environment variables where the runtime has them (Node), `undefined` elsewhere (browsers):
 * the library's switches (`SDPA_*`) are read through this one helper.
 */
export function envVar(name: string): string | undefined {
  return (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name];
}
