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

/** Every case of the fixture file. */
export function loadCases(): ConformanceCase[] {
  const raw = JSON.parse(readFileSync(path, 'utf8')) as { cases: RawCase[] };
  return raw.cases.map((c) => {
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
