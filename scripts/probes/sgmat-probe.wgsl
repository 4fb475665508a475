// Micro-probes of subgroup-matrix throughput through Dawn (scripts/probe-webgpu-sgmat.mjs): how fast
// the driver runs each piece the flash kernel is made of, in isolation. NW subgroups of 32 lanes per
// workgroup; every subgroup runs ITERS iterations of NA independent multiply-accumulates, each fed
// per MODE:
//   mma   left and right held in registers (the tensor-core ceiling through this API);
//   wgr   right loaded from workgroup memory, row_major, stride WST (V staged);
//   wgc   right loaded from workgroup memory, col_major, stride WST (K staged);
//   wgl   left loaded from workgroup memory, row_major, stride WST (P);
//   gr    right loaded from storage, row_major, stride 64 (V direct);
//   gc    right loaded from storage, col_major, stride 64 (K direct);
//   rt    the result stored to workgroup memory (f32, stride WST) and loaded back every iteration (S/O round trip).
// The results go to `dst` so that nothing is dead code.
enable f16;
enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium.subgroup_matrix_uniformity);

@group(0) @binding(0) var<storage, read> src: array<f16>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;

const NW: u32 = {{NW}}u;
const WGS: u32 = NW * 32u;
const ITERS: u32 = {{ITERS}}u;
const WST: u32 = {{WST}}u;
var<workgroup> wsm: array<f16, 16u * 16u * WST>;
var<workgroup> wsf: array<f32, NW * 16u * WST>;

alias LeftM = subgroup_matrix_left<f16, 16, 16>;
alias RightM = subgroup_matrix_right<f16, 16, 16>;
alias ResM = subgroup_matrix_result<f32, 16, 16>;

@compute @workgroup_size(WGS)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let sg = lid / 32u;
  let g = wid.x * NW + sg;
  for (var t = lid; t < 16u * 16u * WST; t += WGS) { wsm[t] = src[t]; }
  workgroupBarrier();
  let a = subgroupMatrixLoad<LeftM, row_major>(&src, 0u, 16u);
  let b = subgroupMatrixLoad<RightM, row_major>(&src, 256u, 16u);
  // Storage loads cycle over 32 tiles of a 64-wide matrix (64 KiB), a different one per workgroup parity.
  let gbase = (wid.x & 7u) * 32768u;
//#for i in 0..NA
  var c_{{i}} = ResM();
//#end
  for (var it = 0u; it < ITERS; it++) {
//#for i in 0..NA
//#if MODE_MMA
    c_{{i}} = subgroupMatrixMultiplyAccumulate(a, b, c_{{i}});
//#end
//#if MODE_WGR
    c_{{i}} = subgroupMatrixMultiplyAccumulate(a, subgroupMatrixLoad<RightM, row_major>(&wsm, ((it * {{NA}}u + {{i}}u) % 16u) * 16u * WST, WST), c_{{i}});
//#end
//#if MODE_WGC
    c_{{i}} = subgroupMatrixMultiplyAccumulate(a, subgroupMatrixLoad<RightM, col_major>(&wsm, ((it * {{NA}}u + {{i}}u) % 16u) * 16u * WST, WST), c_{{i}});
//#end
//#if MODE_WGL
    c_{{i}} = subgroupMatrixMultiplyAccumulate(subgroupMatrixLoad<LeftM, row_major>(&wsm, ((it * {{NA}}u + {{i}}u) % 16u) * 16u * WST, WST), b, c_{{i}});
//#end
//#if MODE_GR
    c_{{i}} = subgroupMatrixMultiplyAccumulate(a, subgroupMatrixLoad<RightM, row_major>(&src, gbase + ((it * {{NA}}u + {{i}}u) % 32u) * 1024u, 64u), c_{{i}});
//#end
//#if MODE_GC
    c_{{i}} = subgroupMatrixMultiplyAccumulate(a, subgroupMatrixLoad<RightM, col_major>(&src, gbase + ((it * {{NA}}u + {{i}}u) % 32u) * 1024u, 64u), c_{{i}});
//#end
//#if MODE_RT
    c_{{i}} = subgroupMatrixMultiplyAccumulate(a, b, c_{{i}});
    subgroupMatrixStore<row_major>(&wsf, sg * 16u * WST, c_{{i}}, WST);
    c_{{i}} = subgroupMatrixLoad<ResM, row_major>(&wsf, sg * 16u * WST, WST);
//#end
//#end
  }
//#for i in 0..NA
  subgroupMatrixStore<row_major>(&dst, (g * {{NA}}u + {{i}}u) * 256u, c_{{i}}, 16u);
//#end
}
