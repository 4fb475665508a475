/**
 * ONNXRUNTIME on the CPU: onnxruntime-node's CPU execution provider in Node.js (falling back to
 * onnxruntime-web's wasm build where the native addon is missing), onnxruntime-web's wasm EP in
 * browsers. Each call runs a one-node opset-23 `Attention` graph built for its shape class, or —
 * for causal S = L calls without a mask on onnxruntime-node — `com.microsoft.GroupQueryAttention`,
 * which skips the masked half and was measured about twice as fast.
 */
import { FULL_SEMANTICS_CAPS } from '../../src/dispatch/caps.js';
import { named, checkScaleFitsFloat32 } from '../../src/dispatch/constraints.js';
import type { AttentionParams, BackendCaps, BackendPart, Availability, RunContext } from '../../src/dispatch/types.js';
import { checkOrtScoreMemory, checkOrtTensorSize } from './constraints.js';
import { runOrtAttention, sessionCache, usesGqaOp, type EngineConfig } from './engine.js';
import type { AttentionOp } from './graph.js';
import { setLoadedOrt } from './interop.js';
import type { OrtModuleLike } from './ort-types.js';
import { isNode, loadOnnxSchema, loadOrt, type OrtFlavor } from './runtime.js';
import { oneAtATime } from './serial.js';
import { startWebOrtWorker } from './web-ort.js';
import { sessionsInWorker, type OrtSessionThread } from './worker-ort.js';

const LABEL = 'onnxruntime (cpu)';

const caps: BackendCaps = {
  ...FULL_SEMANTICS_CAPS,
  dropout: false,
  notes:
    'opset-23 Attention (is_causal = upper-left; lower-right folded into a bool mask), GroupQueryAttention for causal S = L; ' +
    'float16/bfloat16 computed as float32; masks fed as [Bm, Hm, S, L] (copied when S or L broadcast); materializes batch·Hq·S·L float32 scores',
};

let state: { ort: OrtModuleLike; flavor: OrtFlavor; ep: string; sessionThread: () => OrtSessionThread | null } | undefined;
let failure: string | undefined;
/** Why each engine tried before the one in use was passed over (Node: onnxruntime-node's failure). */
let passedOver: string[] = [];

/** The onnxruntime engines this part tries, best first. */
function flavors(): OrtFlavor[] {
  // Node: the native addon first (multi-threaded MLAS); onnxruntime-web's wasm build is the fallback.
  return isNode() ? ['onnxruntime-node', 'onnxruntime-web'] : ['onnxruntime-web'];
}

async function init(): Promise<void> {
  try {
    await loadOnnxSchema();
  } catch (err) {
    failure = `${LABEL} is unavailable: onnx-proto (the ONNX protobuf schema) could not be loaded (${(err as Error).message}); reinstall dependencies`;
    return;
  }
  const errors: string[] = [];
  for (const flavor of flavors()) {
    try {
      const ort = await loadOrt(flavor);
      // onnxruntime-node creates and runs sessions synchronously on the calling thread (up to
      // 248 ms of a blocked event loop per call measured): its sessions live in a worker thread.
      // In a browser onnxruntime-web's wasm held the page 1.6–2.2 s at its first session and
      // 0.46–0.71 s per run at S = 2048: its sessions live in a Web Worker (web-worker.ts).
      // onnxruntime-web in Node (the addon-less fallback) is left as it was.
      if (flavor === 'onnxruntime-node') {
        const w = sessionsInWorker(ort);
        state = { ort: w.ort, flavor, ep: 'cpu', sessionThread: w.sessionThread };
      } else if (!isNode()) {
        // oneAtATime: onnxruntime-web refuses overlapping calls (serial.ts); the main-thread
        // fallback's sessions are queued here, the worker's in web-worker.ts.
        const w = sessionsInWorker(oneAtATime(ort), () => startWebOrtWorker(ort.env.wasm?.numThreads));
        state = { ort: w.ort, flavor, ep: 'wasm', sessionThread: w.sessionThread };
      } else {
        state = { ort: oneAtATime(ort), flavor, ep: 'wasm', sessionThread: () => null };
      }
      passedOver = errors;
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

function runOp(op: AttentionOp) {
  return (p: AttentionParams, ctx: RunContext) => {
    const s = state;
    if (!s) throw new Error(`${LABEL}: run() before a successful init()`);
    const cfg: EngineConfig = { ort: s.ort, ep: s.ep, label: LABEL, op, causalAttrOnlySquare: false, boolMaskAsFloat: false, zeroFullyMaskedRows: false };
    return runOrtAttention(p, ctx, cfg);
  };
}

/** GroupQueryAttention serves causal S = L calls without a mask (and Ev = E, E % 8 = 0, no dropout). */
const checkGqaOpShape = named('checkGqaOpShape', (p: AttentionParams) =>
  usesGqaOp(p)
    ? undefined
    : `group_query_attention serves only upper-left causal calls with S = L, no attnMask tensor, Ev = E and E a multiple of 8, got ${p.causal ? `causal ${p.causal.variant}` : 'non-causal'}, S=${p.s}, L=${p.l}, mask ${p.maskKind}, E=${p.e}, Ev=${p.ev}; the attention kernel runs it`,
);

/** The ONNXRUNTIME backend's CPU part. */
export const onnxruntimeCpu: BackendPart = {
  device: 'cpu',
  label: LABEL,
  caps,
  availability,
  init,
  constraints: [checkScaleFitsFloat32(LABEL), checkOrtTensorSize(LABEL), checkOrtScoreMemory(LABEL, false)],
  kernels: [
    {
      // Measured ~2× faster than opset-23 Attention on onnxruntime-node's CPU EP for causal S = L
      // (it skips the masked half); on the wasm build it was not faster, so it is off there.
      name: 'group_query_attention',
      summary: 'com.microsoft.GroupQueryAttention (causal S = L without a mask) on onnxruntime-node',
      program: { kind: 'onnx', op: 'com.microsoft.GroupQueryAttention' },
      availability: () =>
        state?.ep === 'cpu'
          ? { available: true }
          : { available: false, reason: `group_query_attention runs on onnxruntime-node's CPU EP only (measured no faster on the wasm build); engine in use: ${state?.flavor ?? 'none'}${passedOver.length ? ` because ${passedOver.join('; ')}` : ''}` },
      constraints: [checkGqaOpShape],
      run: runOp('GroupQueryAttention'),
    },
    {
      name: 'attention',
      summary: 'opset-23 Attention (is_causal for upper-left; lower-right folded into a bool mask)',
      program: { kind: 'onnx', op: 'Attention' },
      run: runOp('Attention'),
    },
  ],
  // Scores are float32 in MLAS: a logit of magnitude |s| carries ~|s|·6e-8 rounding, which exp
  // turns into relative weight error (conformance large_logits_stability, |s| ~ 1e4: 8.4e-5).
  tolerance: {
    float32: { atol: 1e-4, rtol: 1e-4 },
    float16: { atol: 1e-3, rtol: 1e-3 },
    bfloat16: { atol: 8e-3, rtol: 8e-3 },
  },
  describe: () => ({
    engine: state?.flavor ?? null,
    // The better engines passed over, each with why (Node without onnxruntime-node: the wasm build runs).
    notUsed: state && state.flavor !== 'onnxruntime-node' && passedOver.length ? passedOver : [],
    executionProvider: state?.ep ?? null,
    // onnxruntime-node, and onnxruntime-web in browsers: 'worker' (off the event loop / the page's
    // main thread), or 'main' with the reason; null for onnxruntime-web in Node.
    sessionThread: state?.sessionThread() ?? null,
    versions: state?.ort.env.versions ?? null,
    sessions: sessionCache.stats(),
    liveResources: sessionCache.stats().live,
  }),
};
