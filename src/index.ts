/**
 * sdpa-dispatch: scaled dot-product attention for JavaScript with PyTorch 2.11 semantics and
 * explainable backend dispatch. The public API (DESIGN §1) is re-exported from here.
 */
export { tensor, Tensor, type Device, type TensorData, type DeviceStorage, type TensorFactory } from './tensor.js';
export type { DType, FloatDType } from './dtype.js';
export { sdpa, explainDispatch, SdpaDispatchError } from './sdpa.js';
export type { SdpaOptions } from './params.js';
export { SDPBackend, DEFAULT_PRIORITY } from './dispatch/types.js';
export type {
  AttentionParams,
  BackendCaps,
  BackendDescriptor,
  BackendPart,
  Constraint,
  ConstraintResult,
  MaskKind,
  CausalVariant,
  Tolerance,
  RunContext,
  Availability,
} from './dispatch/types.js';
export type { DispatchReport, CandidateTrace } from './dispatch/select.js';
export {
  withBackends,
  setBackendEnabled,
  isBackendEnabled,
  setBackendPriority,
  getBackendPriority,
  scopesAreAsyncIsolated,
  type WithBackendsOptions,
} from './dispatch/context.js';
export { registerBackend, unregisterBackend, registeredBackends } from './dispatch/registry.js';
export { selectBackend } from './dispatch/select.js';
export { setDispatchLogger, lastDispatch, type DispatchLogger, type DispatchRecord } from './dispatch/trace.js';
export { causalUpperLeft, causalLowerRight, CausalBias, type AttentionBias, type CausalBiasVariant } from './bias.js';
export { capabilities, type Capabilities, type PartCapabilities } from './capabilities.js';
export { SdpaTypeError, SdpaRangeError, BackendFaultError, type InputErrorDetails, type SdpaInputError } from './errors.js';
export { float32ToFloat16Bits, float16BitsToFloat32, float32ToBFloat16Bits, bfloat16BitsToFloat32 } from './dtype.js';
export { StructuredBias, structuredVisible, type StructuredBiasInit, type BiasBlocks } from './bias.js';
export type { Alignment, WindowInfo, AlibiInfo, BlockDiagonalInfo } from './dispatch/types.js';
export * from './advanced/index.js';
export { sdpaSplitKv, type SplitKvOptions } from './workers/split-kv.js';
export { getWebGpuDevice } from './webgpu/device.js';
