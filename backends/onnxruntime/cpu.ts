/**
 * ONNXRUNTIME on the CPU: onnxruntime-node's CPU execution provider in Node.js (falling back to
 * onnxruntime-web's wasm build where the native addon is missing), onnxruntime-web's wasm EP in
 * browsers. Each call runs a one-node opset-23 `Attention` graph built for its shape class, or —
 * for causal S = L calls without a mask on onnxruntime-node — `com.microsoft.GroupQueryAttention`,
 * which skips the masked half and was measured about twice as fast.
 */
import type { BackendCaps, BackendPart, Availability } from '../../src/dispatch/types.js';
import { checkOrtScoreMemory, checkOrtTensorSize } from './constraints.js';
import { runOrtAttention, sessionCache, type EngineConfig } from './engine.js';
import { setLoadedOrt } from './interop.js';
import type { OrtModuleLike } from './ort-types.js';
import { isNode, loadOnnxSchema, loadOrt, type OrtFlavor } from './runtime.js';

const LABEL = 'onnxruntime (cpu)';

const caps: BackendCaps = {
  dtypes: ['float32', 'float16', 'bfloat16'],
  maxHeadDim: Number.MAX_SAFE_INTEGER,
  headDimMultiple: 1,
  maskKinds: ['none', 'bool', 'float'],
  causalVariants: ['upper-left', 'lower-right', 'both'],
  maskWithCausal: true,
  dropout: false,
  gqa: true,
  customScale: true,
  valueDimDiffers: true,
  notes:
    'opset-23 Attention (is_causal = upper-left; lower-right folded into a bool mask), GroupQueryAttention for causal S = L; ' +
    'float16/bfloat16 computed as float32; masks fed as [Bm, Hm, S, L] (copied when S or L broadcast); materializes batch·Hq·S·L float32 scores',
};

let state: { ort: OrtModuleLike; flavor: OrtFlavor; ep: string } | undefined;
let failure: string | undefined;

async function init(): Promise<void> {
  try {
    await loadOnnxSchema();
  } catch (err) {
    failure = `${LABEL} is unavailable: onnx-proto (the ONNX protobuf schema) could not be loaded (${(err as Error).message}); reinstall dependencies`;
    return;
  }
  const errors: string[] = [];
  // Node: the native addon first (multi-threaded MLAS); its wasm build is the fallback.
  const flavors: OrtFlavor[] = isNode() ? ['onnxruntime-node', 'onnxruntime-web'] : ['onnxruntime-web'];
  for (const flavor of flavors) {
    try {
      const ort = await loadOrt(flavor);
      state = { ort, flavor, ep: flavor === 'onnxruntime-node' ? 'cpu' : 'wasm' };
      setLoadedOrt(ort);
      return;
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  failure = `${LABEL} is unavailable: ${errors.join('; ')}`;
}

function availability(): Availability {
  if (state) return { available: true };
  return { available: false, reason: failure ?? `${LABEL} has not been probed yet; await capabilities() or call sdpa() to load onnxruntime` };
}

/** The ONNXRUNTIME backend's CPU part. */
export const onnxruntimeCpu: BackendPart = {
  device: 'cpu',
  label: LABEL,
  caps,
  availability,
  init,
  constraints: [checkOrtTensorSize(LABEL), checkOrtScoreMemory(LABEL, false)],
  run(p, ctx) {
    const s = state;
    if (!s) throw new Error(`${LABEL}: run() before a successful init()`);
    // GroupQueryAttention was measured faster only on onnxruntime-node's CPU EP (not on wasm).
    const cfg: EngineConfig = { ort: s.ort, ep: s.ep, label: LABEL, op: 'Attention', gqaForCausal: s.ep === 'cpu', causalAttrOnlySquare: false, boolMaskAsFloat: false, zeroFullyMaskedRows: false };
    return runOrtAttention(p, ctx, cfg);
  },
  // Scores are float32 in MLAS: a logit of magnitude |s| carries ~|s|·6e-8 rounding, which exp
  // turns into relative weight error (conformance large_logits_stability, |s| ~ 1e4: 8.4e-5).
  tolerance: {
    float32: { atol: 1e-4, rtol: 1e-4 },
    float16: { atol: 1e-3, rtol: 1e-3 },
    bfloat16: { atol: 8e-3, rtol: 8e-3 },
  },
  describe: () => ({
    engine: state?.flavor ?? null,
    executionProvider: state?.ep ?? null,
    versions: state?.ort.env.versions ?? null,
    sessions: sessionCache.stats(),
    liveResources: sessionCache.stats().live,
  }),
};
