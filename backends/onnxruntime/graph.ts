/**
 * Builds the one-node ONNX models this backend runs, per call shape class, and encodes them with
 * the protobufjs-generated schema from `onnx-proto`. Every tensor dimension is symbolic (a
 * `dimParam`), so one session serves every batch size and sequence length: only attributes,
 * dtype and mask kind shape the graph (and so the session-cache key).
 */
import type { onnx as OnnxNs } from 'onnx-proto';
import type { OnnxSchema } from './runtime.js';

/** ONNX element type of the graph's float inputs. */
export type GraphFloat = 'float32' | 'float16';

/** The attention operator a graph wraps. */
export type AttentionOp = 'Attention' | 'MultiHeadAttention' | 'GroupQueryAttention';

/** Everything that shapes an attention graph (and nothing that does not: no sizes but MHA's heads). */
export interface AttentionGraphSpec {
  readonly op: AttentionOp;
  readonly dtype: GraphFloat;
  /** Upper-left causal (`is_causal` / `unidirectional`). */
  readonly causal: boolean;
  /**
   * Explicit scale; undefined lets the op use 1/sqrt(E), which keeps the graph independent of E.
   * `'input'`: the scale is a run-time input (a scalar multiplying q in the graph, the op's own scale
   * then 1), so one session serves every custom scale: a scale attribute made each distinct scale
   * its own session (17 scales cycling missed the cache every call, ~48 ms each), and the attribute
   * must be > 0 where this serves negative and tiny scales too.
   */
  readonly scale: number | 'input' | undefined;
  /** Mask input: none, bool (Attention only) or additive float in `dtype`. Always 4-D `[Bm, Hm, S, L]`. */
  readonly mask: 'none' | 'bool' | 'float';
  /** MultiHeadAttention / GroupQueryAttention: heads and head dims are attributes / reshape targets there. */
  readonly heads?: number;
  /** GroupQueryAttention: key/value heads. */
  readonly kvHeads?: number;
  readonly headDim?: number;
}

/** A stable string naming a spec: the session-cache key (with the execution provider added). */
export function graphKey(spec: AttentionGraphSpec): string {
  const parts = [spec.op, spec.dtype, spec.causal ? 'causal' : 'full', spec.scale === undefined ? 'scale=default' : spec.scale === 'input' ? 'scale=input' : `scale=${spec.scale}`, `mask=${spec.mask}`];
  if (spec.op === 'MultiHeadAttention') parts.push(`heads=${spec.heads}`, `dim=${spec.headDim}`);
  if (spec.op === 'GroupQueryAttention') parts.push(`heads=${spec.heads}/${spec.kvHeads}`, `dim=${spec.headDim}`);
  return parts.join('|');
}

/** The ONNX opset of the default domain: 23 introduced the standard `Attention` operator. */
export const OPSET = 23;
/** IR version 10 is what opset 23 requires at least; onnxruntime 1.30 reads it. */
const IR_VERSION = 10;

/** Encodes the model for `spec` as ONNX protobuf bytes. */
export function buildAttentionModel(onnx: OnnxSchema, spec: AttentionGraphSpec): Uint8Array {
  const DT = onnx.TensorProto.DataType;
  const AT = onnx.AttributeProto.AttributeType;
  const elem = spec.dtype === 'float32' ? DT.FLOAT : DT.FLOAT16;
  const valueInfo = (name: string, type: number, dims: readonly (string | number)[]) => ({
    name,
    type: { tensorType: { elemType: type, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  });
  const intAttr = (name: string, i: number): OnnxNs.IAttributeProto => ({ name, type: AT.INT, i });
  const floatAttr = (name: string, f: number): OnnxNs.IAttributeProto => ({ name, type: AT.FLOAT, f });

  // With a scale input the graph's q is named q_in and `q` is q_in · scale (a Mul node first).
  const scaleInput = spec.scale === 'input';
  const inputs = [
    valueInfo(scaleInput ? 'q_in' : 'q', elem, ['batch', 'q_heads', 'q_len', 'head_dim']),
    valueInfo('k', elem, ['batch', 'kv_heads', 'kv_len', 'head_dim']),
    valueInfo('v', elem, ['batch', 'kv_heads', 'kv_len', 'v_head_dim']),
  ];
  if (spec.mask !== 'none') inputs.push(valueInfo('mask', spec.mask === 'bool' ? DT.BOOL : elem, ['mask_batch', 'mask_heads', 'q_len', 'kv_len']));
  const output = valueInfo('y', elem, ['batch', 'q_heads', 'q_len', 'v_head_dim']);
  if (scaleInput) inputs.push(valueInfo('scale', elem, []));
  const scaleAttr = (): OnnxNs.IAttributeProto[] => (spec.scale === undefined ? [] : [floatAttr('scale', spec.scale === 'input' ? 1 : spec.scale)]);

  let nodes: OnnxNs.INodeProto[];
  if (spec.op === 'Attention') {
    const attribute = [intAttr('is_causal', spec.causal ? 1 : 0)];
    attribute.push(...scaleAttr());
    nodes = [{ opType: 'Attention', name: 'attention', input: spec.mask === 'none' ? ['q', 'k', 'v'] : ['q', 'k', 'v', 'mask'], output: ['y'], attribute }];
  } else if (spec.op === 'GroupQueryAttention') {
    // GroupQueryAttention (contrib) is causal by construction: with seqlens_k = S - 1 and
    // total_sequence_length = S (fed per run) it is the prompt case, upper-left = lower-right for S = L.
    // It takes [B, S, H·E]: the layout changes run inside the graph.
    const heads = spec.heads ?? 1;
    const kvHeads = spec.kvHeads ?? heads;
    const headDim = spec.headDim ?? 1;
    const shapeConst = (name: string, values: number[]): OnnxNs.INodeProto => ({
      opType: 'Constant',
      name,
      output: [name],
      attribute: [{ name: 'value', type: AT.TENSOR, t: { dims: [values.length], dataType: DT.INT64, int64Data: values } }],
    });
    const perm: OnnxNs.IAttributeProto = { name: 'perm', type: AT.INTS, ints: [0, 2, 1, 3] };
    const toBsd = (x: string, h: number): OnnxNs.INodeProto[] => [
      { opType: 'Transpose', name: `${x}_bshe`, input: [x], output: [`${x}_t`], attribute: [perm] },
      shapeConst(`${x}_shape`, [0, 0, h * headDim]),
      { opType: 'Reshape', name: `${x}_bsd`, input: [`${x}_t`, `${x}_shape`], output: [`${x}3`] },
    ];
    const attribute = [intAttr('num_heads', heads), intAttr('kv_num_heads', kvHeads)];
    attribute.push(...scaleAttr());
    inputs.push(valueInfo('seqlens_k', DT.INT32, ['batch']), valueInfo('total_sequence_length', DT.INT32, []));
    nodes = [
      ...toBsd('q', heads),
      ...toBsd('k', kvHeads),
      ...toBsd('v', kvHeads),
      {
        opType: 'GroupQueryAttention',
        domain: 'com.microsoft',
        name: 'attention',
        input: ['q3', 'k3', 'v3', '', '', 'seqlens_k', 'total_sequence_length'],
        output: ['y3'],
        attribute,
      },
      shapeConst('y_shape', [0, 0, heads, headDim]),
      { opType: 'Reshape', name: 'y_bshe', input: ['y3', 'y_shape'], output: ['y_t'] },
      { opType: 'Transpose', name: 'y_bhse', input: ['y_t'], output: ['y'], attribute: [perm] },
    ];
  } else {
    // MultiHeadAttention takes the query as [B, S, H·E] (k/v may stay [B, H, L, E]): the
    // transposes run inside the graph, on the engine, rather than as copies in JavaScript.
    const heads = spec.heads ?? 1;
    const headDim = spec.headDim ?? 1;
    const shapeConst = (name: string, values: number[]) => ({
      opType: 'Constant',
      name,
      output: [name],
      attribute: [{ name: 'value', type: AT.TENSOR, t: { dims: [values.length], dataType: DT.INT64, int64Data: values } }],
    });
    const perm = { name: 'perm', type: AT.INTS, ints: [0, 2, 1, 3] };
    const attribute = [intAttr('num_heads', heads), intAttr('unidirectional', spec.causal ? 1 : 0)];
    attribute.push(...scaleAttr());
    nodes = [
      { opType: 'Transpose', name: 'q_bshe', input: ['q'], output: ['q_t'], attribute: [perm] },
      shapeConst('q_shape', [0, 0, heads * headDim]),
      { opType: 'Reshape', name: 'q_bsd', input: ['q_t', 'q_shape'], output: ['q3'] },
      {
        opType: 'MultiHeadAttention',
        domain: 'com.microsoft',
        name: 'attention',
        input: ['q3', 'k', 'v', '', '', spec.mask === 'none' ? '' : 'mask'],
        output: ['y3'],
        attribute,
      },
      shapeConst('y_shape', [0, 0, heads, headDim]),
      { opType: 'Reshape', name: 'y_bshe', input: ['y3', 'y_shape'], output: ['y_t'] },
      { opType: 'Transpose', name: 'y_bhse', input: ['y_t'], output: ['y'], attribute: [perm] },
    ];
  }
  if (scaleInput) nodes = [{ opType: 'Mul', name: 'scale_q', input: ['q_in', 'scale'], output: ['q'] }, ...nodes];
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: 'sdpa-dispatch',
    opsetImport: [
      { domain: '', version: OPSET },
      { domain: 'com.microsoft', version: 1 },
    ],
    graph: { name: `sdpa_${spec.op}`, node: nodes, input: inputs, output: [output] },
  });
  return onnx.ModelProto.encode(model).finish();
}
