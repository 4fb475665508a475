// Shared prelude of the tensor-core shaders, included before anything else is declared and before
// common.wgsl (which declares Params): the f16 and subgroup-matrix extensions, the uniform block
// and the q/k/v bindings (binding 4, the output, is each shader's own), and the 16x16 f16 matrix
// types. It includes nothing itself, so loaders need only one level of includes.
enable f16;
enable chromium_experimental_subgroup_matrix;
// Matrix offsets are uniform per subgroup, not per workgroup, where a workgroup holds several
// subgroups: the default check of chromium.subgroup_matrix_uniformity is workgroup uniformity.
diagnostic(off, chromium.subgroup_matrix_uniformity);

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f16>;
@group(0) @binding(2) var<storage, read> k: array<f16>;
@group(0) @binding(3) var<storage, read> v: array<f16>;

alias LeftM = subgroup_matrix_left<f16, 16, 16>;
alias RightM = subgroup_matrix_right<f16, 16, 16>;
alias ResM = subgroup_matrix_result<f32, 16, 16>;
