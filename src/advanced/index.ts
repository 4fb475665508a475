/** The advanced APIs (issue 7): flash-attn and xFormers style functions, varlen, KV cache, LSE merge, modules. */
export { flashAttnFunc, flashAttnQkvpackedFunc, flashAttnKvpackedFunc, flashAttnVarlenFunc, flashAttnWithKvcache, explainFlashAttn, type FlashAttnOptions, type KvcacheOptions } from './flash-attn.js';
export {
  memoryEfficientAttention,
  explainMemoryEfficient,
  LowerTriangularMask,
  LowerTriangularFromBottomRightMask,
  BlockDiagonalMask,
  BlockDiagonalCausalMask,
  LocalAttentionFromBottomRightMask,
  type XformersBias,
  type MemoryEfficientOptions,
} from './xformers.js';
export { mergeAttentionStates } from './merge.js';
export { MultiHeadAttention, FlashAttention, KvCache, applyRotary, type MultiHeadAttentionOptions, type MhaWeights, type MhaForwardOptions, type FlashAttentionOptions, type FlashAttentionForwardOptions } from './modules.js';
export { runAttentionWithLse, type AttentionWithLse } from './run.js';
export { bshdToBhsd, bhsdToBshd, permuteView } from './layout.js';
