/**
 * The WebGPU names that the public declarations use (`tensor.fromGPUBuffer(buffer: GPUBuffer)`,
 * `getWebGpuDevice(): Promise<GPUDevice>`), declared as empty global interfaces. Where the
 * consumer has WebGPU types (`@webgpu/types`, or a DOM lib that includes them) these merge with
 * the full interfaces; without them (a Node project with no DOM lib) the declarations still
 * type-check, with `skipLibCheck: false`, instead of failing on `Cannot find name 'GPUDevice'`.
 * Referencing `@webgpu/types` instead would not do: it needs the DOM lib itself.
 */
declare global {
  // eslint-disable-next-line @typescript-eslint/no-empty-interface
  interface GPUDevice {}
  // eslint-disable-next-line @typescript-eslint/no-empty-interface
  interface GPUBuffer {}
}

export {};
