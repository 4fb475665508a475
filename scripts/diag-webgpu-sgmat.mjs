// Diagnostic dump: one small problem through the mw kernel's debug outputs and the old kernel.
const lib = await import('../dist/src/index.js');
const { flashWebgpu } = await import('../dist/backends/flash/webgpu.js');
const { tensor, sdpa, withBackends, registerBackend, unregisterBackend, registeredBackends } = lib;
await lib.capabilities();
const fd = registeredBackends().find((d) => d.name === 'FLASH_ATTENTION');
if (!fd.parts.some((p) => p.device === 'webgpu')) { unregisterBackend('FLASH_ATTENTION'); registerBackend({ ...fd, parts: [...fd.parts, flashWebgpu] }); }
let seed = 1; const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
const S = 64, L = 64, D = 64;
const qf = Float32Array.from({ length: S * D }, rnd), kf = Float32Array.from({ length: L * D }, rnd), vf = Float32Array.from({ length: L * D }, rnd);
const q = tensor.fromFloat32(qf, [1, 1, S, D], 'float16'), k = tensor.fromFloat32(kf, [1, 1, L, D], 'float16'), v = tensor.fromFloat32(vf, [1, 1, L, D], 'float16');
const res = { inputs: { q: Array.from(await q.toFloat32()), k: Array.from(await k.toFloat32()), v: Array.from(await v.toFloat32()) } };
const runs = [['old', {}], ...['4x1x64d', '1x2x64d'].flatMap((t) => [0, 1, 2, 3, 4, 5].map((d) => [`${t}-dbg${d}`, { SDPA_WEBGPU_SGMAT_TILES: t, SDPA_WEBGPU_SGMAT_DEBUG: String(d) }]))];
for (const [name, envs] of runs) {
  for (const k2 of ['SDPA_WEBGPU_SGMAT_TILES', 'SDPA_WEBGPU_SGMAT_DEBUG', 'SDPA_WEBGPU_SGMAT_KERNEL']) delete process.env[k2];
  Object.assign(process.env, envs);
  try { res[name] = Array.from(await (await withBackends(['FLASH_ATTENTION'], () => sdpa(q, k, v, { device: 'webgpu' }))).toFloat32()); }
  catch (e) { res[name] = String(e.message).slice(0, 500); }
  console.log(name, typeof res[name] === 'string' ? res[name] : res[name].slice(0, 4).map((x) => x.toFixed(4)).join(' '));
}
(await import('node:fs')).writeFileSync(process.env.OUT + '/diag.json', JSON.stringify(res));
console.log(JSON.stringify(flashWebgpu.describe().sgmatCompileFailures));
process.exit(0);
