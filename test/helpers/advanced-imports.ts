/** Re-exports for the advanced test helpers. */
import { buildParams } from '../../src/params.js';
import type { SdpaOptions } from '../../src/params.js';
import type { Tensor as TensorT } from '../../src/tensor.js';
export { Tensor } from '../../src/tensor.js';
export type { FloatDType } from '../../src/dtype.js';

/** buildParams under a test name. */
export function buildParamsForTest(q: TensorT, k: TensorT, v: TensorT, opts: SdpaOptions) {
  return buildParams('test', q, k, v, opts);
}
