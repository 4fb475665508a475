/**
 * Zero-copy layout views for the flash-attn / xFormers APIs. Their tensors are `[B, S, H, D]`
 * (tokens outer, heads inner); the dispatch core reads `[B, H, S, D]`. Since every CPU backend
 * addresses q/k/v through strides (src/cpu/layout.ts), a permuted view reads the caller's buffer in
 * place; `[B, S, H, D]` keeps D contiguous, which is what the native kernel needs for its rows.
 */
import { SdpaTypeError, describeValue } from '../errors.js';
import { Tensor } from '../tensor.js';

const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;

/** A view of `t` with its dims permuted (`perm[i]` = source dim of result dim i); no copy. */
export function permuteView(t: Tensor, perm: readonly number[]): Tensor {
  return new Tensor({
    shape: perm.map((d) => t.shape[d]),
    dtype: t.dtype,
    data: t.data,
    storage: t.storage,
    strides: perm.map((d) => t.strides[d]),
    offset: t.offset,
  });
}

/** Checks `x` is a CPU tensor of `rank` dims; names the argument on failure. */
export function expectTensor(fn: string, name: string, x: unknown, rank: number, form: string): Tensor {
  if (!(x instanceof Tensor)) throw new SdpaTypeError(fn, { argument: name, expected: `a Tensor ${form}`, received: describeValue(x) });
  if (x.shape.length !== rank) throw new SdpaTypeError(fn, { argument: `${name}.shape`, expected: `${rank} dims ${form}`, received: fmt(x.shape) });
  // Strided views of device buffers would need each GPU program to honour strides; keep them on the CPU.
  if (x.device !== 'cpu') throw new SdpaTypeError(fn, { argument: name, expected: `a CPU tensor ${form} (device tensors use sdpa() in [B, H, S, D])`, received: `a tensor on ${x.device}` });
  // Views of x share its data: a disposed or detached x is refused here, under its own name.
  x.assertUsable(fn, name);
  return x;
}

/** `[B, S, H, D]` → `[B, H, S, D]` view. */
export function bshdToBhsd(t: Tensor): Tensor {
  return permuteView(t, [0, 2, 1, 3]);
}

/** `[B, H, S, D]` → `[B, S, H, D]` view (the result layout of the flash-attn style functions). */
export function bhsdToBshd(t: Tensor): Tensor {
  return permuteView(t, [0, 2, 1, 3]);
}

/** Packed `[T, H, D]` → `[1, H, T, D]` view (varlen: all sequences side by side in one batch row). */
export function packedToBhsd(t: Tensor): Tensor {
  return new Tensor({
    shape: [1, t.shape[1], t.shape[0], t.shape[2]],
    dtype: t.dtype,
    data: t.data,
    strides: [t.shape[0] * t.strides[0], t.strides[1], t.strides[0], t.strides[2]],
    offset: t.offset,
  });
}

/** `[1, H, T, D]` → `[T, H, D]` view. */
export function bhsdToPacked(t: Tensor): Tensor {
  return new Tensor({ shape: [t.shape[2], t.shape[1], t.shape[3]], dtype: t.dtype, data: t.data, strides: [t.strides[2], t.strides[1], t.strides[3]], offset: t.offset });
}

/** Selects index `i` of dim `dim` (a view without that dim). */
export function selectView(t: Tensor, dim: number, i: number): Tensor {
  return new Tensor({
    shape: t.shape.filter((_, d) => d !== dim),
    dtype: t.dtype,
    data: t.data,
    strides: t.strides.filter((_, d) => d !== dim),
    offset: t.offset + i * t.strides[dim],
  });
}

/** Narrows dim `dim` to `[start, start + len)` (a view). */
export function narrowView(t: Tensor, dim: number, start: number, len: number): Tensor {
  return new Tensor({
    shape: t.shape.map((d, x) => (x === dim ? len : d)),
    dtype: t.dtype,
    data: t.data,
    strides: t.strides,
    offset: t.offset + start * t.strides[dim],
  });
}

/**
 * Merges dims `dim` and `dim + 1` into one when their strides allow it (stride[dim] =
 * shape[dim+1]·stride[dim+1]); otherwise returns undefined and the caller copies.
 */
export function mergeDimsView(t: Tensor, dim: number): Tensor | undefined {
  if (t.strides[dim] !== t.shape[dim + 1] * t.strides[dim + 1]) return undefined;
  const shape = [...t.shape.slice(0, dim), t.shape[dim] * t.shape[dim + 1], ...t.shape.slice(dim + 2)];
  const strides = [...t.strides.slice(0, dim), t.strides[dim + 1], ...t.strides.slice(dim + 2)];
  return new Tensor({ shape, dtype: t.dtype, data: t.data, strides, offset: t.offset });
}

/** A row-major copy of `t` (used only where a view cannot express the layout, e.g. paged KV). */
export function contiguousCopy(t: Tensor): Tensor {
  return new Tensor({ shape: t.shape, dtype: t.dtype, data: t.contiguousData().slice() });
}
