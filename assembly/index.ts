// The wasmformer kernel module: every export takes output pointers first, then inputs, then
// sizes and strides (in floats). Pointers are byte offsets into the memory JS owns. No kernel
// allocates, grows memory or keeps state between calls.

/** First byte that JS may use: everything below holds this module's static data. */
export function heapBase(): usize {
  return __heap_base;
}

/** 1 in the relaxed-SIMD build, 0 in the SIMD128 build. */
export function relaxed(): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? 1 : 0;
}

export { packedSize, pack, matmul, embedPacked } from './matmul';
export { packedSizeQ8, quantizedRowBytes, packQ8, quantizeRows, matmulQ8, embedPackedQ8 } from './quantized';
export { qkT, pv, attention, attendRows } from './attention';
export { softmax, logSoftmax } from './softmax';
export { layernorm } from './layernorm';
export { gelu, silu, relu, add, vexp, embed, embedQ8, argmax } from './elementwise';
