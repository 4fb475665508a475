/** The MATH backend: the textbook formula, the reference every other backend is tested against. */
import { SDPBackend, type BackendDescriptor } from '../../src/dispatch/types.js';
import { mathCpu } from './cpu.js';
import { mathWebgpu } from './webgpu.js';

/** MATH descriptor (parts: cpu; webgpu joins with the WebGPU work). */
export const mathBackend: BackendDescriptor = {
  name: SDPBackend.MATH,
  summary: 'Reference implementation: materializes the score matrix, float64 on the CPU.',
  parts: [mathCpu, mathWebgpu],
};
