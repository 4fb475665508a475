/** Loads the PyTorch 2.11 conformance cases (test/fixtures/sdpa_cases.json) as tensors and options. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tensor, causalLowerRight, type DType, type SdpaOptions, type Tensor } from '../../src/index.js';

interface RawTensor {
  shape: number[];
  dtype?: string;
  data: (number | string | boolean)[];
}
interface RawCase {
  name: string;
  q: RawTensor;
  k: RawTensor;
  v: RawTensor;
  is_causal: boolean;
  causal_variant?: 'lower_right';
  attn_mask?: RawTensor;
  scale?: number;
  enable_gqa?: boolean;
  expected?: RawTensor;
  error?: string;
}

/** One conformance case ready to run. */
export interface ConformanceCase {
  name: string;
  q: Tensor;
  k: Tensor;
  v: Tensor;
  opts: SdpaOptions;
  expected?: Float64Array;
  expectedShape?: number[];
  error?: string;
}

const num = (x: number | string | boolean): number =>
  typeof x === 'boolean' ? (x ? 1 : 0) : typeof x === 'string' ? (x === '-inf' ? -Infinity : x === 'inf' ? Infinity : Number(x)) : x;

function toTensor(r: RawTensor): Tensor {
  const dtype = (r.dtype ?? 'float32') as DType;
  const values = Float32Array.from(r.data, num);
  return tensor.fromFloat32(values, r.shape, dtype);
}

const path = fileURLToPath(new URL('../fixtures/sdpa_cases.json', import.meta.url));

/** The first `rows` rows along the second-to-last dim of a raw tensor (e.g. the first queries). */
function firstRows(r: RawTensor, rows: number): RawTensor {
  const n = r.shape.length;
  const s = r.shape[n - 2];
  const inner = r.shape[n - 1];
  const outer = r.shape.slice(0, n - 2).reduce((a, b) => a * b, 1);
  const data: RawTensor['data'] = [];
  for (let o = 0; o < outer; o++) data.push(...r.data.slice(o * s * inner, (o * s + rows) * inner));
  return { ...r, shape: [...r.shape.slice(0, n - 2), rows, inner], data };
}

/** Queries kept by the decode-shaped slices. */
const DECODE_ROWS = 4;

/**
 * Decode-shaped slices of the PyTorch cases: the first {@link DECODE_ROWS} query rows of every
 * case with S > 16 and no mask or lower-right variant (top-left causal rows do not depend on later
 * queries, so PyTorch's expected rows stay exact). The fixture has few S ≤ 16 half-precision
 * cases, and the decode kernels take only S ≤ 16: these give them fp16, bf16, GQA and causal calls.
 */
function decodeSlices(cases: readonly RawCase[]): RawCase[] {
  return cases
    .filter((c) => !c.error && c.expected && !c.attn_mask && !c.causal_variant && c.q.shape.length >= 2 && c.q.shape[c.q.shape.length - 2] > 16)
    .map((c) => ({ ...c, name: `${c.name}_first${DECODE_ROWS}q`, q: firstRows(c.q, DECODE_ROWS), expected: firstRows(c.expected!, DECODE_ROWS) }));
}

/** Every case of the fixture file, then (with `withDecodeSlices`) its decode-shaped slices. */
export function loadCases(opts: { withDecodeSlices?: boolean } = {}): ConformanceCase[] {
  const raw = JSON.parse(readFileSync(path, 'utf8')) as { cases: RawCase[] };
  return [...raw.cases, ...(opts.withDecodeSlices ? decodeSlices(raw.cases) : [])].map((c) => {
    const q = toTensor(c.q);
    const k = toTensor(c.k);
    const v = toTensor(c.v);
    const opts: SdpaOptions = {};
    if (c.is_causal) opts.isCausal = true;
    if (c.causal_variant === 'lower_right') opts.attnMask = causalLowerRight(q.shape[q.shape.length - 2], k.shape[k.shape.length - 2]);
    if (c.attn_mask) opts.attnMask = toTensor(c.attn_mask);
    if (c.scale !== undefined) opts.scale = c.scale;
    if (c.enable_gqa) opts.enableGqa = true;
    return {
      name: c.name,
      q,
      k,
      v,
      opts,
      expected: c.expected ? Float64Array.from(c.expected.data, num) : undefined,
      expectedShape: c.expected?.shape,
      error: c.error,
    };
  });
}
