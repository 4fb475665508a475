/**
 * The FLASH_ATTENTION backend: fused, tiled attention with an online softmax on the fastest
 * engine per device — a native C++ kernel on the CPU, WGSL (f16, subgroups, tensor cores) on WebGPU.
 */
import { SDPBackend, type BackendDescriptor, type BackendPart } from '../../src/dispatch/types.js';
import { flashCpu } from './cpu.js';
import { flashWebgpu } from './webgpu.js';

const parts: BackendPart[] = [flashCpu, flashWebgpu];

/** FLASH_ATTENTION descriptor. */
export const flashBackend: BackendDescriptor = {
  name: SDPBackend.FLASH_ATTENTION,
  summary: 'Flash attention: fused tiles, online softmax, no S×L buffer; native SIMD/AMX on CPU, WGSL with tensor cores on WebGPU.',
  parts,
};
