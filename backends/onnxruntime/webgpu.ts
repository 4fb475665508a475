/**
 * ONNXRUNTIME on WebGPU: onnxruntime-web's WebGPU execution provider where `navigator.gpu` exists.
 * onnxruntime-web 1.30 has no WebGPU kernel for opset-23 `Attention` (it silently falls back to the
 * wasm CPU kernel — "webgpu kernel not found in registries for Op type: Attention"), so this part
 * runs `com.microsoft.MultiHeadAttention`, which the WebGPU EP implements: Hq = Hkv, Ev = E,
 * float32/float16, float biases (bool masks become 0/-inf), causal by attribute only for S = L.
 */
import type { Availability, BackendCaps, BackendPart } from '../../src/dispatch/types.js';
import { checkOrtInputsOnCpu, checkOrtScoreMemory, checkOrtTensorSize, checkOrtScaleAttribute } from './constraints.js';
import { runOrtAttention, type EngineConfig } from './engine.js';
import type { OrtModuleLike } from './ort-types.js';
import { isNode, loadOnnxSchema, loadOrt } from './runtime.js';
import { oneAtATime } from './serial.js';
import { checkScaleFitsFloat32 } from '../../src/dispatch/constraints.js';

const LABEL = 'onnxruntime (webgpu)';

/**
 * float32 without causal only: measured in headless Chromium 156 on SwiftShader (test/browser.test.ts),
 * the EP's causal MultiHeadAttention returned wrong values (max |diff| 0.44 against the reference),
 * and float16 faulted on an adapter without shader-f16 instead of being refused. Until both are
 * understood, dispatch sends those calls to FLASH/EFFICIENT (webgpu) with this reason.
 */
const caps: BackendCaps = {
  dtypes: ['float32'],
  maxHeadDim: Number.MAX_SAFE_INTEGER,
  headDimMultiple: 1,
  maskKinds: ['none', 'bool', 'float'],
  causalVariants: [],
  maskWithCausal: true,
  dropout: false,
  gqa: false,
  customScale: true,
  valueDimDiffers: false,
  notes: 'com.microsoft.MultiHeadAttention on the WebGPU EP (browsers); inputs uploaded from the CPU, output read back',
};

/**
 * Why the part is off in Node.js, as measured on 2026-11-21 with onnxruntime-web 1.30.0, the
 * `webgpu` package (Dawn) and Mesa lavapipe: (1) the EP's `GPUQueue.writeBuffer` calls pass views
 * of the wasm memory, a SharedArrayBuffer, which Dawn's Node binding rejects ("Invalid argument");
 * (2) with that shimmed (copy the view), `GPUDevice.createComputePipelineAsync` never resolves;
 * (3) with that shimmed too (synchronous createComputePipeline), runs complete only while the event
 * loop is kept busy (a 1 ms interval) and `InferenceSession.release()` still hangs. Results then
 * are correct (MultiHeadAttention fp32/fp16, float biases), so the EP itself works: the gap is
 * Dawn's Node event delivery, not the kernels.
 */
export const NODE_WEBGPU_REASON =
  `${LABEL} is unavailable in Node.js: onnxruntime-web 1.30's WebGPU EP does not run under Dawn (the webgpu package: its writeBuffer calls are rejected and ` +
  'its pipelines never finish compiling; docs/onnxruntime.md, "WebGPU EP in Node.js"); use the cpu device here, or a browser';

let ort: OrtModuleLike | undefined;
let failure: string | undefined;

function navigatorGpu(): unknown {
  return (globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu;
}

async function init(): Promise<void> {
  if (isNode()) {
    failure = NODE_WEBGPU_REASON;
    return;
  }
  if (!navigatorGpu()) {
    failure = `${LABEL} is unavailable: navigator.gpu is absent (no WebGPU in this runtime); use the cpu device`;
    return;
  }
  try {
    await loadOnnxSchema();
    // One call at a time: the WebGPU (JSEP) build refuses overlapping session calls (serial.ts).
    ort = oneAtATime(await loadOrt('onnxruntime-web/webgpu'));
  } catch (err) {
    failure = `${LABEL} is unavailable: ${(err as Error).message}`;
  }
}

function availability(): Availability {
  if (ort) return { available: true };
  return { available: false, reason: failure ?? `${LABEL} has not been probed yet; await capabilities() or call sdpa() to load onnxruntime-web` };
}

/** The ONNXRUNTIME backend's WebGPU part. */
export const onnxruntimeWebgpu: BackendPart = {
  device: 'webgpu',
  label: LABEL,
  caps,
  availability,
  init,
  constraints: [checkScaleFitsFloat32(LABEL), checkOrtScaleAttribute(LABEL), checkOrtInputsOnCpu(LABEL), checkOrtTensorSize(LABEL), checkOrtScoreMemory(LABEL, true)],
  kernels: [
    {
      name: 'multi_head_attention',
      summary: 'com.microsoft.MultiHeadAttention on the WebGPU EP (opset-23 Attention has no WebGPU kernel in onnxruntime-web 1.30)',
      program: { kind: 'onnx', op: 'com.microsoft.MultiHeadAttention' },
      run(p, ctx) {
        if (!ort) throw new Error(`${LABEL}: run() before a successful init()`);
        const cfg: EngineConfig = { ort, ep: 'webgpu', label: LABEL, op: 'MultiHeadAttention', causalAttrOnlySquare: true, boolMaskAsFloat: true, zeroFullyMaskedRows: true, nativeFp16: true };
        return runOrtAttention(p, ctx, cfg);
      },
    },
  ],
  tolerance: {
    float32: { atol: 1e-4, rtol: 1e-4 },
    float16: { atol: 3e-3, rtol: 3e-3 },
    bfloat16: { atol: 8e-3, rtol: 8e-3 },
  },
  describe: () => ({ engine: ort ? 'onnxruntime-web/webgpu' : null, versions: ort?.env.versions ?? null }),
};
