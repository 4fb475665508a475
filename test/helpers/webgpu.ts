/**
 * What the WebGPU test files share: probe the adapter once, say why tests skip (and whether
 * SDPA_REQUIRE_WEBGPU=1 turns that into a failure), and make FLASH's webgpu part join the
 * registered FLASH descriptor when it is not part of it yet.
 */
import { capabilities, registerBackend, registeredBackends, unregisterBackend, SDPBackend } from '../../src/index.js';
import { flashWebgpu } from '../../backends/flash/webgpu.js';
import { gpuAvailability } from '../../src/webgpu/device.js';
import type { Availability } from '../../src/dispatch/types.js';

/** The probe's outcome for a test file. */
export interface WebGpuTestSetup {
  readonly avail: Availability;
  /** SDPA_REQUIRE_WEBGPU=1: a missing adapter must fail, not skip (CI). */
  readonly required: boolean;
  /** Empty when an adapter is present, else why the tests skip and how to get a driver. */
  readonly skipReason: string;
}

/** Probes WebGPU and registers FLASH's webgpu part; call once at the top of a test file. */
export async function setUpWebGpuTests(): Promise<WebGpuTestSetup> {
  await capabilities();
  const avail = gpuAvailability();
  const flashDesc = registeredBackends().find((d) => d.name === SDPBackend.FLASH_ATTENTION);
  if (avail.available && !flashDesc?.parts.some((p) => p.device === 'webgpu')) {
    if (flashDesc) unregisterBackend(SDPBackend.FLASH_ATTENTION);
    registerBackend({ name: SDPBackend.FLASH_ATTENTION, summary: flashDesc?.summary ?? 'flash attention', parts: [...(flashDesc?.parts ?? []), flashWebgpu] });
  }
  return {
    avail,
    required: process.env.SDPA_REQUIRE_WEBGPU === '1',
    skipReason: avail.available ? '' : `${(avail as { reason: string }).reason} — install a Vulkan driver with \`sudo bash scripts/install-vulkan.sh\``,
  };
}
