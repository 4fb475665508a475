/**
 * fast-check arbitraries for whole attention problems: shapes (batch dims, GQA, S≠L, Ev≠E), dtypes,
 * mask kinds with broadcast shapes, causal variants, scales and dropout seeds. Values come from a
 * seeded generator so that shrinking works on the problem's structure, not on thousands of floats.
 */
import fc from 'fast-check';
import { causalLowerRight, type FloatDType, type SdpaOptions, type Tensor } from '../../src/index.js';
import { randBoolMask, randTensor, rng } from './random.js';

/** The structure of one problem; `build` turns it into tensors. */
export interface ProblemSpec {
  dtype: FloatDType;
  batch: number[];
  hkv: number;
  group: number;
  s: number;
  l: number;
  e: number;
  ev: number;
  mask: 'none' | 'bool-sl' | 'bool-heads' | 'float-full' | 'float-row';
  causal: 'none' | 'upper-left' | 'lower-right' | 'both';
  scale: number | undefined;
  dropoutP: number;
  seed: number;
  dataSeed: number;
}

/** Arbitrary problem specs; `maxLen` bounds S and L (keep small for slow drivers). */
export function problemSpec(maxLen = 24): fc.Arbitrary<ProblemSpec> {
  return fc.record({
    dtype: fc.constantFrom<FloatDType>('float32', 'float16', 'bfloat16'),
    batch: fc.oneof(fc.constant([]), fc.tuple(fc.integer({ min: 1, max: 2 })), fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 }))),
    hkv: fc.integer({ min: 1, max: 3 }),
    group: fc.integer({ min: 1, max: 3 }),
    s: fc.integer({ min: 1, max: maxLen }),
    l: fc.integer({ min: 1, max: maxLen }),
    e: fc.constantFrom(8, 16, 32, 64, 1, 5, 24),
    ev: fc.constantFrom(0, 8, 16, 40), // 0: same as e
    mask: fc.constantFrom('none', 'none', 'bool-sl', 'bool-heads', 'float-full', 'float-row'),
    causal: fc.constantFrom('none', 'none', 'upper-left', 'lower-right', 'both'),
    scale: fc.option(fc.double({ min: 0.01, max: 2, noNaN: true }), { nil: undefined }),
    dropoutP: fc.constantFrom(0, 0, 0, 0.1, 0.5),
    seed: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    dataSeed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
  }) as fc.Arbitrary<ProblemSpec>;
}

/** A built problem. */
export interface Problem {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  opts: SdpaOptions;
}

/** Tensors and options for a spec (deterministic in the spec). */
export function buildProblem(p: ProblemSpec): Problem {
  const r = rng(p.dataSeed);
  const hq = p.hkv * p.group;
  const ev = p.ev || p.e;
  const q = randTensor(r, [...p.batch, hq, p.s, p.e], p.dtype);
  const k = randTensor(r, [...p.batch, p.hkv, p.l, p.e], p.dtype);
  const v = randTensor(r, [...p.batch, p.hkv, p.l, ev], p.dtype);
  const opts: SdpaOptions = {};
  if (p.group > 1) opts.enableGqa = true;
  const floatDtype = p.dtype === 'bfloat16' ? 'float32' : p.dtype;
  if (p.mask === 'bool-sl') opts.attnMask = randBoolMask(r, [p.s, p.l]);
  else if (p.mask === 'bool-heads') opts.attnMask = randBoolMask(r, [hq, 1, p.l]);
  else if (p.mask === 'float-full') opts.attnMask = randTensor(r, [...p.batch, hq, p.s, p.l], floatDtype);
  else if (p.mask === 'float-row') opts.attnMask = randTensor(r, [p.l], floatDtype);
  if (p.causal === 'upper-left' || p.causal === 'both') opts.isCausal = true;
  if ((p.causal === 'lower-right' || p.causal === 'both') && !opts.attnMask) opts.attnMask = causalLowerRight(p.s, p.l);
  if (p.scale !== undefined) opts.scale = p.scale;
  if (p.dropoutP > 0) {
    opts.dropoutP = p.dropoutP;
    opts.seed = p.seed;
  }
  return { q, k, v, opts };
}
