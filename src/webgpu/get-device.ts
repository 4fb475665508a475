/**
 * `getWebGpuDevice()`, apart from device.ts so that its declaration names only `GPUDevice` (the
 * public declarations must not reach the internal WebGPU types: see src/gpu-globals.ts).
 */
import '../gpu-globals.js';
import { gpuAvailability, gpuContext, initWebGpu } from './device.js';

/**
 * The device this library computes on, for callers that create their own GPUBuffers to wrap with
 * `tensor.fromGPUBuffer` (buffers of any other device are refused). Initialises WebGPU if needed.
 * @throws Error with the unavailability reason when there is no usable device.
 * @example const device = await getWebGpuDevice(); const buf = device.createBuffer({ size, usage });
 */
export async function getWebGpuDevice(): Promise<GPUDevice> {
  await initWebGpu();
  const ctx = gpuContext();
  if (!ctx) throw new Error(`getWebGpuDevice: ${(gpuAvailability() as { reason: string }).reason}`);
  return ctx.device;
}
