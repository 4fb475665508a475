/**
 * Subgroup-matrix emulation: rewrites a WGSL program that uses Dawn's
 * `chromium_experimental_subgroup_matrix` into plain WGSL that any adapter runs, so the logic of
 * the tensor-core kernels can be tested where no adapter exposes the feature (lavapipe in CI).
 *
 * How: every subgroup matrix becomes a private `SgmMat` (all 16×16 elements in f32) held whole by
 * each invocation. Loads read the whole tile, products compute the whole tile. The real builtins
 * take subgroup-uniform operands, so every invocation computes what its subgroup's matrix holds:
 * exact up to f32 rounding order in the products. A store is done by one invocation per subgroup
 * of 32 (local_invocation_index % 32 == 0, the kernels' subgroup width): lavapipe runs the
 * invocations of a workgroup in chunks of 8 one after another between barriers, so if every
 * invocation stored, a later chunk that loads a tile, accumulates into it and stores it back (O
 * kept in workgroup memory) would accumulate twice; the other invocations' copies are never
 * observed. Slow (each invocation does its subgroup's whole work) — small shapes only.
 *
 * Supported (what the kernels use): 16×16 f16 left/right and f32 result matrices, the
 * `subgroupMatrixLoad<T, row_major|col_major>(&array, offset, stride)` /
 * `subgroupMatrixStore<row_major|col_major>(&array, offset, value, stride)` forms on module-scope
 * arrays, `subgroupMatrixMultiplyAccumulate`, `subgroupMatrixMultiply<f32>`, value constructors
 * `T()`, and `subgroupMatrixScalarAdd/Subtract/Multiply`. Anything else throws, naming it.
 */

/** Element of a module-scope array: its WGSL element type. */
type ArrayElems = ReadonlyMap<string, string>;

const MATRIX_TYPE = /subgroup_matrix_(left|right|result)\s*<\s*(f16|f32)\s*,\s*(\d+)\s*,\s*(\d+)\s*>/g;

/** Module-scope `var<…> name: array<T…>` declarations: name → element type. */
function moduleArrays(src: string): ArrayElems {
  const out = new Map<string, string>();
  const re = /^\s*(?:@\w+\s*\([^)]*\)\s*)*var\s*<[^>]*>\s*(\w+)\s*:\s*array\s*<\s*(\w+)/gm;
  for (let m = re.exec(src); m; m = re.exec(src)) out.set(m[1], m[2]);
  return out;
}

/** Index of the `close` matching the `open` at `from` (which must hold `open`). */
function matching(src: string, from: number, open: string, close: string): number {
  let depth = 0;
  for (let i = from; i < src.length; i++) {
    if (src[i] === open) depth++;
    else if (src[i] === close && --depth === 0) return i;
  }
  throw new Error(`sgmat emulation: unbalanced ${open}${close} at offset ${from}`);
}

/**
 * Splits argument text at top-level commas. Angle brackets nest only in template argument lists
 * (`angles`): in call arguments `<` and `>` are comparisons and shifts.
 */
function splitArgs(text: string, angles = false): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(' || c === '[' || (angles && c === '<')) depth++;
    else if (c === ')' || c === ']' || (angles && c === '>')) depth--;
    else if (c === ',' && depth === 0) {
      out.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  const last = text.slice(start).trim();
  if (last) out.push(last);
  return out;
}

/**
 * Rewrites every call of `name` (optionally with template arguments) through `replace`, innermost
 * arguments first (arguments may themselves hold calls).
 */
function rewriteCalls(src: string, name: string, replace: (tmpl: string[], args: string[]) => string): string {
  const re = new RegExp(`\\b${name}\\b`, 'g');
  let out = '';
  let pos = 0;
  for (let m = re.exec(src); m; m = re.exec(src)) {
    let i = m.index + name.length;
    let tmpl: string[] = [];
    while (/\s/.test(src[i] ?? '')) i++;
    if (src[i] === '<') {
      const end = matching(src, i, '<', '>');
      tmpl = splitArgs(src.slice(i + 1, end), true);
      i = end + 1;
      while (/\s/.test(src[i] ?? '')) i++;
    }
    if (src[i] !== '(') continue; // not a call (e.g. a name inside a comment)
    const end = matching(src, i, '(', ')');
    const args = splitArgs(rewriteCalls(src.slice(i + 1, end), name, replace));
    out += src.slice(pos, m.index) + replace(tmpl, args);
    pos = end + 1;
    re.lastIndex = end + 1;
  }
  return out + src.slice(pos);
}

/** `&name` (or `&(name)`) → `name`; only direct module-scope arrays are supported. */
function arrayOperand(arg: string, arrays: ArrayElems, what: string): string {
  const m = /^&\s*\(?\s*(\w+)\s*\)?$/.exec(arg);
  if (!m || !arrays.has(m[1])) throw new Error(`sgmat emulation: ${what} needs &<module-scope array>, got '${arg}'`);
  return m[1];
}

function layoutOf(arg: string | undefined, what: string): 'row_major' | 'col_major' {
  if (arg === 'row_major' || arg === 'col_major') return arg;
  throw new Error(`sgmat emulation: ${what} needs a row_major or col_major template argument, got '${arg ?? ''}'`);
}

/**
 * Makes the compute entry point set `sgm_leader` (local_invocation_index % 32 == 0) first thing,
 * adding the builtin parameter when the entry point lacks it.
 */
function markLeader(code: string): string {
  const m = /@compute[^{]*?fn\s+\w+\s*\(/.exec(code);
  if (!m) throw new Error('sgmat emulation: no @compute entry point found');
  const open = m.index + m[0].length - 1;
  const close = matching(code, open, '(', ')');
  const body = code.indexOf('{', close);
  const params = code.slice(open + 1, close);
  const named = /@builtin\s*\(\s*local_invocation_index\s*\)\s*(\w+)\s*:/.exec(params);
  const lid = named ? named[1] : 'sgm_lid';
  const newParams = named ? params : `${params.trim() ? `${params.trim()}, ` : ''}@builtin(local_invocation_index) sgm_lid: u32`;
  return `${code.slice(0, open + 1)}${newParams}${code.slice(close, body + 1)}\n  sgm_leader = (${lid} % 32u) == 0u;${code.slice(body + 1)}`;
}

/** Strips `//` comments, so calls named in comments are not rewritten. */
function stripComments(src: string): string {
  return src.replace(/\/\/[^\n]*/g, '');
}

/**
 * Returns `src` with every subgroup-matrix type and builtin replaced by plain-WGSL helpers.
 * @throws Error naming the construct when the program uses something the emulation lacks.
 */
export function emulateSubgroupMatrix(src: string): string {
  let code = stripComments(src)
    .replace(/^\s*enable\s+chromium_experimental_subgroup_matrix\s*;\s*$/gm, '')
    .replace(/^\s*diagnostic\s*\(\s*off\s*,\s*chromium\.subgroup_matrix_uniformity\s*\)\s*;\s*$/gm, '');
  code = code.replace(MATRIX_TYPE, (all, _use: string, _t: string, a: string, b: string) => {
    if (a !== '16' || b !== '16') throw new Error(`sgmat emulation: only 16×16 matrices are emulated, got ${all}`);
    return 'SgmMat';
  });
  const arrays = moduleArrays(code);
  const helpers = new Map<string, string>();

  code = rewriteCalls(code, 'subgroupMatrixLoad', (tmpl, args) => {
    const layout = layoutOf(tmpl[1], 'subgroupMatrixLoad');
    if (args.length !== 3) throw new Error(`sgmat emulation: subgroupMatrixLoad takes (&array, offset, stride), got ${args.length} arguments`);
    const arr = arrayOperand(args[0], arrays, 'subgroupMatrixLoad');
    const fn = `sgm_load_${arr}_${layout}`;
    const idx = layout === 'row_major' ? 'off + r * stride + c' : 'off + c * stride + r';
    helpers.set(
      fn,
      `fn ${fn}(off: u32, stride: u32) -> SgmMat {\n  var m: SgmMat;\n  for (var r = 0u; r < 16u; r++) {\n    for (var c = 0u; c < 16u; c++) { m.e[r * 16u + c] = f32(${arr}[${idx}]); }\n  }\n  return m;\n}`,
    );
    return `${fn}(${args[1]}, ${args[2]})`;
  });
  code = rewriteCalls(code, 'subgroupMatrixStore', (tmpl, args) => {
    const layout = layoutOf(tmpl[0], 'subgroupMatrixStore');
    if (args.length !== 4) throw new Error(`sgmat emulation: subgroupMatrixStore takes (&array, offset, value, stride), got ${args.length} arguments`);
    const arr = arrayOperand(args[0], arrays, 'subgroupMatrixStore');
    const fn = `sgm_store_${arr}_${layout}`;
    const idx = layout === 'row_major' ? 'off + r * stride + c' : 'off + c * stride + r';
    helpers.set(
      fn,
      `fn ${fn}(off: u32, m: SgmMat, stride: u32) {\n  if (!sgm_leader) { return; }\n  for (var r = 0u; r < 16u; r++) {\n    for (var c = 0u; c < 16u; c++) { ${arr}[${idx}] = ${arrays.get(arr)}(m.e[r * 16u + c]); }\n  }\n}`,
    );
    return `${fn}(${args[1]}, ${args[2]}, ${args[3]})`;
  });
  code = rewriteCalls(code, 'subgroupMatrixMultiplyAccumulate', (_t, args) => `sgm_mma(${args.join(', ')})`);
  code = rewriteCalls(code, 'subgroupMatrixMultiply', (_t, args) => `sgm_mma(${args[0]}, ${args[1]}, SgmMat())`);
  for (const [name, op] of [['subgroupMatrixScalarAdd', '+'], ['subgroupMatrixScalarSubtract', '-'], ['subgroupMatrixScalarMultiply', '*']] as const) {
    code = rewriteCalls(code, name, (_t, args) => {
      const fn = `sgm_scalar_${name.slice('subgroupMatrixScalar'.length).toLowerCase()}`;
      helpers.set(fn, `fn ${fn}(a: SgmMat, s: f32) -> SgmMat {\n  var m = a;\n  for (var i = 0u; i < 256u; i++) { m.e[i] = m.e[i] ${op} s; }\n  return m;\n}`);
      return `${fn}(${args[0]}, f32(${args[1]}))`;
    });
  }
  // Loops over 16 run to sgm_n(), which is 16 but not a constant the driver's compiler can see:
  // fully unrolling every inlined tile product (4,096 FMAs each) made lavapipe compile for minutes.
  const runtimeArray = [...arrays.keys()].find((a) => new RegExp(`var\\s*<\\s*storage[^>]*>\\s*${a}\\s*:\\s*array\\s*<\\s*\\w+\\s*>`).test(code));
  if (!runtimeArray) throw new Error('sgmat emulation: the program binds no runtime-sized storage array');
  code = markLeader(code);
  const left = /\bsubgroupMatrix\w*|subgroup_matrix_\w+/.exec(code);
  if (left) throw new Error(`sgmat emulation: '${left[0]}' is not emulated`);
  const prelude = [
    '// Subgroup matrices emulated in plain WGSL (src/webgpu/sgmat-emulation.ts): each invocation holds whole tiles.',
    'struct SgmMat { e: array<f32, 256> }',
    'var<private> sgm_leader: bool;',
    `fn sgm_n() -> u32 { return select(16u, 0u, arrayLength(&${runtimeArray}) == 0xffffffffu); }`,
    'fn sgm_mma(a: SgmMat, b: SgmMat, c: SgmMat) -> SgmMat {',
    '  var o = c;',
    '  for (var r = 0u; r < 16u; r++) {',
    '    for (var n = 0u; n < 16u; n++) {',
    '      var acc = o.e[r * 16u + n];',
    '      for (var k = 0u; k < 16u; k++) { acc = fma(a.e[r * 16u + k], b.e[k * 16u + n], acc); }',
    '      o.e[r * 16u + n] = acc;',
    '    }',
    '  }',
    '  return o;',
    '}',
    ...helpers.values(),
  ]
    .join('\n')
    .replace(/for \(var (\w) = 0u; \1 < 16u; \1\+\+\)/g, 'for (var $1 = 0u; $1 < sgm_n(); $1++)');
  return `${code}\n${prelude}\n`;
}
