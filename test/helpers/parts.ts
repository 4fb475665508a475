/**
 * The backend parts a test run covers: every registered part, or only those named in
 * SDPA_ONLY_PARTS ("FLASH_ATTENTION:cpu,MATH:cpu") — the sanitizer run uses it to focus on the
 * native kernel.
 */
import { registeredBackends, type BackendPart, type SDPBackend } from '../../src/index.js';

/** A registered part with its backend name. */
export interface TestedPart {
  backend: SDPBackend;
  part: BackendPart;
}

/** Parts to test in this run. */
export function testedParts(): TestedPart[] {
  const only = (process.env.SDPA_ONLY_PARTS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return registeredBackends()
    .flatMap((d) => d.parts.map((part) => ({ backend: d.name, part })))
    .filter(({ backend, part }) => only.length === 0 || only.includes(`${backend}:${part.device}`));
}
