/** The EFFICIENT_ATTENTION backend: tiled online softmax, O(S) memory, any mask. */
import { SDPBackend, type BackendDescriptor } from '../../src/dispatch/types.js';
import { efficientCpu } from './cpu.js';
import { efficientWebgpu } from './webgpu.js';

/** EFFICIENT_ATTENTION descriptor (parts: cpu; webgpu joins with the WebGPU work). */
export const efficientBackend: BackendDescriptor = {
  name: SDPBackend.EFFICIENT_ATTENTION,
  summary: 'Memory-efficient attention: tiled online softmax, never materializes S×L, any mask kind.',
  parts: [efficientCpu, efficientWebgpu],
};
