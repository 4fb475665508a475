/**
 * Bad input: each kind throws one error naming the argument, the expectation and the value, before
 * any backend runs, and leaves the inputs byte-for-byte unchanged.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SdpaRangeError, SdpaTypeError, causalLowerRight, explainDispatch, sdpa, tensor, withBackends, SDPBackend, setBackendEnabled, type Tensor } from '../src/index.js';
import { randTensor, rng } from './helpers/random.js';

const r = rng(11);
const q = randTensor(r, [1, 4, 6, 8]);
const k = randTensor(r, [1, 4, 5, 8]);
const v = randTensor(r, [1, 4, 5, 8]);
const k2 = randTensor(r, [1, 2, 5, 8]);
const v2 = randTensor(r, [1, 2, 5, 8]);
const k3 = randTensor(r, [1, 3, 5, 8]);
const v3 = randTensor(r, [1, 3, 5, 8]);
const qh = randTensor(r, [1, 4, 6, 8], 'float16');
const hash = (ts: Tensor[]) => createHash('sha256').update(Buffer.concat(ts.map((t) => Buffer.from(t.data!.buffer, t.data!.byteOffset, t.data!.byteLength)))).digest('hex');

type Call = () => unknown;
/** [description, call, argument named, error class, fragment of the received value]. */
const sdpaCases: [string, Call, string, typeof SdpaTypeError | typeof SdpaRangeError, string][] = [
  ['q not a tensor', () => sdpa(new Float32Array(4) as never, k, v), 'q', SdpaTypeError, 'Float32Array(4)'],
  ['k is null', () => sdpa(q, null as never, v), 'k', SdpaTypeError, 'null'],
  ['v is a plain object', () => sdpa(q, k, { shape: [1] } as never), 'v', SdpaTypeError, 'an object'],
  ['bool q', () => sdpa(tensor(new Uint8Array(48), [1, 1, 6, 8]), k, v), 'q.dtype', SdpaTypeError, 'bool'],
  ['dtype mismatch', () => sdpa(qh, k, v), 'k.dtype', SdpaTypeError, 'float32'],
  ['rank mismatch', () => sdpa(q, randTensor(r, [4, 5, 8]), v), 'k.shape', SdpaTypeError, 'rank 3'],
  ['1-D q', () => sdpa(tensor(new Float32Array(8), [8]), k, v), 'q.shape', SdpaTypeError, '[8]'],
  ['zero-length dim', () => sdpa(tensor(new Float32Array(0), [1, 4, 0, 8]), k, v), 'q.shape[2]', SdpaRangeError, '0'],
  ['batch mismatch', () => sdpa(randTensor(r, [2, 4, 6, 8]), randTensor(r, [3, 4, 5, 8]), randTensor(r, [3, 4, 5, 8])), 'k.shape[0]', SdpaTypeError, '3'],
  ['heads mismatch without GQA', () => sdpa(q, k2, v2), 'k.shape[1]', SdpaTypeError, '2 in [1, 2, 5, 8]'],
  ['indivisible GQA', () => sdpa(q, k3, v3, { enableGqa: true }), 'k.shape[1]', SdpaTypeError, '3 in'],
  ['E mismatch', () => sdpa(q, randTensor(r, [1, 4, 5, 16]), v), 'k.shape[3]', SdpaTypeError, '16'],
  ['L mismatch between k and v', () => sdpa(q, k, randTensor(r, [1, 4, 7, 8])), 'v.shape[2]', SdpaTypeError, '7'],
  ['k/v heads differ', () => sdpa(q, k2, randTensor(r, [1, 4, 5, 8]), { enableGqa: true }), 'v.shape[1]', SdpaTypeError, '4'],
  ['dropoutP = 1', () => sdpa(q, k, v, { dropoutP: 1 }), 'opts.dropoutP', SdpaRangeError, '1'],
  ['dropoutP negative', () => sdpa(q, k, v, { dropoutP: -0.1 }), 'opts.dropoutP', SdpaRangeError, '-0.1'],
  ['dropoutP a string', () => sdpa(q, k, v, { dropoutP: '0.1' as never }), 'opts.dropoutP', SdpaTypeError, '"0.1"'],
  ['scale NaN', () => sdpa(q, k, v, { scale: NaN }), 'opts.scale', SdpaRangeError, 'NaN'],
  ['scale Infinity', () => sdpa(q, k, v, { scale: Infinity }), 'opts.scale', SdpaRangeError, 'Infinity'],
  ['seed fractional', () => sdpa(q, k, v, { seed: 1.5 }), 'opts.seed', SdpaRangeError, '1.5'],
  ['seed too big', () => sdpa(q, k, v, { seed: 2 ** 32 }), 'opts.seed', SdpaRangeError, '4294967296'],
  ['isCausal a number', () => sdpa(q, k, v, { isCausal: 1 as never }), 'opts.isCausal', SdpaTypeError, '1'],
  ['unknown device', () => sdpa(q, k, v, { device: 'cuda' as never }), 'opts.device', SdpaRangeError, '"cuda"'],
  ['PyTorch spelling', () => sdpa(q, k, v, { is_causal: true } as never), 'opts.is_causal', SdpaTypeError, 'unknown option "is_causal"'],
  ['opts not an object', () => sdpa(q, k, v, 5 as never), 'opts', SdpaTypeError, '5'],
  ['mask a Float32Array', () => sdpa(q, k, v, { attnMask: new Float32Array(30) as never }), 'opts.attnMask', SdpaTypeError, 'Float32Array(30)'],
  ['mask of wrong dtype', () => sdpa(q, k, v, { attnMask: randTensor(r, [6, 5], 'bfloat16') }), 'opts.attnMask.dtype', SdpaTypeError, 'bfloat16'],
  ['mask unbroadcastable', () => sdpa(q, k, v, { attnMask: tensor(new Uint8Array(24).fill(1), [6, 4], 'bool') }), 'opts.attnMask', SdpaTypeError, '[6, 4]'],
  ['mask of higher rank', () => sdpa(q, k, v, { attnMask: tensor(new Uint8Array(30).fill(1), [1, 1, 1, 6, 5], 'bool') }), 'opts.attnMask', SdpaTypeError, '[1, 1, 1, 6, 5]'],
  ['causal bias for other lengths', () => sdpa(q, k, v, { attnMask: causalLowerRight(6, 9) }), 'opts.attnMask', SdpaTypeError, 'L=9'],
  ['detached buffer', () => {
    const t = randTensor(r, [1, 4, 6, 8]);
    structuredClone(t.data!.buffer, { transfer: [t.data!.buffer as ArrayBuffer] });
    return sdpa(t, k, v);
  }, 'q', SdpaTypeError, 'detached'],
];

const factoryCases: [string, Call, string, typeof SdpaTypeError | typeof SdpaRangeError, string][] = [
  ['data length ≠ shape product', () => tensor(new Float32Array(5), [2, 3]), 'data', SdpaRangeError, 'length 5'],
  ['negative dim', () => tensor(new Float32Array(0), [2, -1]), 'shape[1]', SdpaRangeError, '-1'],
  ['fractional dim', () => tensor(new Float32Array(3), [1.5, 2]), 'shape[0]', SdpaTypeError, '1.5'],
  ['huge dims', () => tensor(new Float32Array(1), [2 ** 20, 2 ** 20]), 'shape', SdpaRangeError, 'elements'],
  ['shape not an array', () => tensor(new Float32Array(1), 1 as never), 'shape', SdpaTypeError, '1'],
  ['unknown dtype', () => tensor(new Float32Array(1), [1], 'float64' as never), 'dtype', SdpaTypeError, '"float64"'],
  ['Uint16Array without dtype', () => tensor(new Uint16Array(1), [1]), 'dtype', SdpaTypeError, 'undefined'],
  ['Int32Array for float16', () => tensor(new Int32Array(1) as never, [1], 'float16'), 'data', SdpaTypeError, 'Int32Array(1)'],
  ['number[] for bool', () => tensor([0, 1] as never, [2], 'bool'), 'data', SdpaTypeError, '[0, 1]'],
  ['bool data out of 0/1', () => tensor(new Uint8Array([0, 2]), [2], 'bool'), 'data[1]', SdpaRangeError, '2'],
  ['plain array with a non-number', () => tensor([1, '2'] as never, [2]), 'data[1]', SdpaTypeError, '"2"'],
];

const toggleCases: [string, Call, string, typeof SdpaTypeError | typeof SdpaRangeError, string][] = [
  ['unknown backend name', () => withBackends(['FLASH' as never], () => 0), 'backends[0]', SdpaTypeError, '"FLASH"'],
  ['empty backend list', () => withBackends([], () => 0), 'backends', SdpaRangeError, '[]'],
  ['backend list not an array', () => withBackends('MATH' as never, () => 0), 'backends', SdpaTypeError, '"MATH"'],
  ['fn not a function', () => withBackends([SDPBackend.MATH], 3 as never), 'fn', SdpaTypeError, '3'],
  ['setBackendEnabled unknown', () => setBackendEnabled('CUDNN' as never, true), 'backend', SdpaTypeError, '"CUDNN"'],
  ['setBackendEnabled non-boolean', () => setBackendEnabled(SDPBackend.MATH, 'no' as never), 'enabled', SdpaTypeError, '"no"'],
];

async function thrown(call: Call): Promise<unknown> {
  try {
    await call();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('bad input', () => {
  for (const [name, call, argument, cls, received] of [...sdpaCases, ...factoryCases, ...toggleCases]) {
    it(`${name} → ${cls.name} naming ${argument}`, async () => {
      const before = hash([q, k, v, k2, v2, qh]);
      const err = (await thrown(call)) as InstanceType<typeof cls>;
      expect(err, 'expected a throw').toBeInstanceOf(cls);
      expect(err.argument).toBe(argument);
      expect(err.message).toContain(`${argument}: expected ${err.expected}, got `);
      expect(err.received).toContain(received);
      expect(hash([q, k, v, k2, v2, qh])).toBe(before);
    });
  }
  it(`covers ${sdpaCases.length + factoryCases.length + toggleCases.length} kinds`, () => {
    expect(sdpaCases.length + factoryCases.length + toggleCases.length).toBeGreaterThanOrEqual(40);
  });
  it('a mask dtype error lists each accepted dtype once ("bool or float32" for a float32 q)', async () => {
    const err = (await thrown(() => sdpa(q, k, v, { attnMask: randTensor(rng(5), [6, 5], 'bfloat16') }))) as SdpaTypeError;
    expect(err.expected).toBe('bool or float32');
    const errH = (await thrown(() => sdpa(qh, qh, qh, { attnMask: randTensor(rng(5), [6, 6], 'bfloat16') }))) as SdpaTypeError;
    expect(errH.expected).toBe('bool, float32 or float16 (the dtype of q)');
  });
  it('explainDispatch validates the same way', () => {
    expect(() => explainDispatch(q, k2, v2)).toThrow(SdpaTypeError);
  });
  it('leaves global toggles untouched after a failed withBackends', async () => {
    await thrown(() => withBackends([], () => 0));
    setBackendEnabled(SDPBackend.MATH, true);
  });
});
