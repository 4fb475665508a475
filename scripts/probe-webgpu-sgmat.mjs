#!/usr/bin/env node
// Subgroup-matrix micro-probes (scripts/probes/sgmat-probe.wgsl) on the WebGPU adapter: TF/s of
// f16×f16→f32 16×16×16 multiply-accumulates fed from registers, workgroup memory, storage, and with
// a result round trip through workgroup memory. Shows how close a WGSL kernel can come to the
// tensor cores through Dawn, and which feed costs what (docs/performance-webgpu.md).
// Usage: node scripts/probe-webgpu-sgmat.mjs [--modes mma,wgr,...] [--na 4,8] [--nw 4,8] [--wst 16,24] [--json out.json]
import { performance } from 'node:perf_hooks';
import { readFileSync, writeFileSync } from 'node:fs';
const { gpuContext, initWebGpu } = await import('../dist/src/webgpu/device.js');
const { getWebGpuDevice } = await import('../dist/src/index.js');
const { expandDirectives, expandTemplate } = await import('../dist/src/webgpu/programs.js');
const { emulateSubgroupMatrix } = await import('../dist/src/webgpu/sgmat-emulation.js');

const args = process.argv.slice(2);
const opt = (n, d) => { const i = args.indexOf(n); return i >= 0 ? args[i + 1] : d; };
const list = (n, d) => opt(n, d).split(',').filter(Boolean);
await initWebGpu();
const ctx = gpuContext();
if (!ctx || !ctx.subgroupMatrixConfigs.length) { console.error('needs an adapter with subgroup matrices (or SDPA_WEBGPU_SGMAT_EMULATE=1 to check that the probes compile and run)'); process.exit(1); }
// Under emulation (lavapipe) the figures mean nothing; it checks the probes compile and run.
if (ctx.sgmatEmulated) console.log('emulated subgroup matrices: a smoke run, not a measurement');
const device = await getWebGpuDevice();
const source = readFileSync(new URL('./probes/sgmat-probe.wgsl', import.meta.url), 'utf8');
const WGS_COUNT = Number(opt('--wgs', '2048'));
const ITERS = Number(opt('--iters', '256'));

const srcBuf = device.createBuffer({ size: 1 << 20, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
const halves = new Uint16Array(1 << 19);
for (let i = 0; i < halves.length; i++) halves[i] = 0x2000 + (i % 97); // small positive f16 values
device.queue.writeBuffer(srcBuf, 0, halves);

const rows = [];
for (const mode of list('--modes', 'mma,wgr,wgc,wgl,gr,gc,rt')) {
  for (const nw of list('--nw', '8').map(Number)) {
    for (const na of list('--na', '4,8').map(Number)) {
      for (const wst of list('--wst', mode.startsWith('wg') || mode === 'rt' ? '16,24' : '16').map(Number)) {
        const defines = { NW: nw, NA: na, ITERS, WST: wst, MODE_MMA: +(mode === 'mma'), MODE_WGR: +(mode === 'wgr'), MODE_WGC: +(mode === 'wgc'), MODE_WGL: +(mode === 'wgl'), MODE_GR: +(mode === 'gr'), MODE_GC: +(mode === 'gc'), MODE_RT: +(mode === 'rt') };
        let code = expandTemplate(expandDirectives(source, defines, 'sgmat-probe.wgsl'), defines, 'sgmat-probe.wgsl');
        if (ctx.sgmatEmulated) code = emulateSubgroupMatrix(code);
        const row = { mode, nw, na, wst };
        try {
          const module = device.createShaderModule({ code });
          const errs = (await module.getCompilationInfo()).messages.filter((m) => m.type === 'error');
          if (errs.length) throw new Error(errs.map((e) => `${e.lineNum}: ${e.message}`).join('; '));
          const pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
          const dst = device.createBuffer({ size: WGS_COUNT * nw * na * 256 * 4, usage: GPUBufferUsage.STORAGE });
          const bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: srcBuf } }, { binding: 1, resource: { buffer: dst } }] });
          const once = async (reps) => {
            const enc = device.createCommandEncoder();
            for (let r = 0; r < reps; r++) { const pass = enc.beginComputePass(); pass.setPipeline(pipeline); pass.setBindGroup(0, bg); pass.dispatchWorkgroups(WGS_COUNT); pass.end(); }
            const t = performance.now();
            device.queue.submit([enc.finish()]);
            await device.queue.onSubmittedWorkDone();
            return performance.now() - t;
          };
          await once(1);
          // One dispatch and five in one submit: the difference is kernel time without the submit/await latency.
          const t1 = Math.min(await once(1), await once(1), await once(1));
          const t5 = Math.min(await once(5), await once(5));
          const per = (t5 - t1) / 4;
          const flops = WGS_COUNT * nw * ITERS * na * 2 * 16 * 16 * 16;
          Object.assign(row, { ms_one: +t1.toFixed(3), ms_per_dispatch: +per.toFixed(3), tflops: +(flops / (per / 1000) / 1e12).toFixed(1) });
          dst.destroy();
        } catch (err) {
          row.error = String(err.message ?? err).slice(0, 300);
        }
        rows.push(row);
        console.log('probe', JSON.stringify(row));
      }
    }
  }
}
const jsonOut = opt('--json');
if (jsonOut) writeFileSync(jsonOut, JSON.stringify(rows, null, 1));
process.exit(0);
