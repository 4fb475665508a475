/**
 * sdpa-dispatch: scaled dot-product attention for JavaScript with PyTorch 2.11 semantics and
 * explainable backend dispatch. The public API (docs/design.md §1) is re-exported from here.
 */
export { tensor, Tensor, type Device, type TensorData, type TensorSource, type Float16ArrayLike, type DeviceStorage, type TensorFactory } from './tensor.js';
export type { DType, FloatDType } from './dtype.js';
export { sdpa, explainDispatch, SdpaDispatchError } from './sdpa.js';
export type { SdpaOptions, SdpaWeightsOptions, VerifyOptions } from './params.js';
export { canUse, type CanUseChoice, type CanUseResult } from './can-use.js';
export { onFallback, type FallbackEvent, type FallbackListener, type FallbackListenerOptions } from './dispatch/fallback.js';
export { calibrate, DEFAULT_CALIBRATION_SHAPES, type CalibrateOptions, type CalibrationShape, type CalibrationProgress, type CalibrationResult } from './calibrate.js';
export {
  resetCalibration,
  saveCalibration,
  loadCalibration,
  calibratedClasses,
  shapeClassOf,
  shapeClassKey,
  type ShapeClass,
  type ClassRanking,
  type Measurement,
  type CalibrationData,
} from './dispatch/calibration.js';
export type { VerifyRecord } from './verify.js';
export { SDPBackend, DEFAULT_PRIORITY, BUILTIN_PRIORITY } from './dispatch/types.js';
export type { TensorInput, OrtTensorLike } from './tensor-adapters.js';
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
  BackendName,
  KernelVariant,
  KernelProgram,
  KernelEnvPin,
  AttentionWithWeights,
} from './dispatch/types.js';
export type { DispatchReport, CandidateTrace, KernelTrace } from './dispatch/select.js';
export { setBackendEnabled, isBackendEnabled, setBackendPriority, getBackendPriority, scopesAreAsyncIsolated } from './dispatch/context.js';
export { withBackends, type WithBackendsOptions, type BackendChoice, type KernelChoice } from './dispatch/scope.js';
export { registerBackend, unregisterBackend, registeredBackends } from './dispatch/registry.js';
export { selectBackend } from './dispatch/select.js';
export { setDispatchLogger, lastDispatch, type DispatchLogger, type DispatchRecord } from './dispatch/trace.js';
export { causalUpperLeft, causalLowerRight, CausalBias, type AttentionBias, type CausalBiasVariant } from './bias.js';
export { capabilities, type Capabilities, type PartCapabilities, type KernelCapabilities } from './capabilities.js';
export { SdpaTypeError, SdpaRangeError, BackendFaultError, SdpaAbortError, SdpaVerifyError, type InputErrorDetails, type SdpaInputError, type AbortStage, type VerifyMismatch } from './errors.js';
export { float32ToFloat16Bits, float16BitsToFloat32, float32ToBFloat16Bits, bfloat16BitsToFloat32 } from './dtype.js';
export { StructuredBias, structuredVisible, type StructuredBiasInit, type BiasBlocks } from './bias.js';
export type { Alignment, WindowInfo, AlibiInfo, BlockDiagonalInfo } from './dispatch/types.js';
export * from './advanced/index.js';
export { sdpaSplitKv, type SplitKvOptions } from './builtins.js';
export { getWebGpuDevice } from './webgpu/get-device.js';
