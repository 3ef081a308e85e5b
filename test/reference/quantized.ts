// Scalar references for the q8 kernels (assembly/quantized.ts), in the kernels' own float32
// arithmetic (Math.fround at every rounding), so that their integer part can be checked exactly.

const f = Math.fround;
const TINY = f(1e-30);

/** The largest magnitude of a quantized activation: 7 bits in the relaxed build, 11 in the SIMD128 one. */
export function activationLevels(build: string): number {
  return build === 'relaxed' ? 63 : 1023;
}

/** Rounds to the nearest integer, halves to even (wasm's nearest). */
export function nearestEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** quantizeRows: q[m, k] in [-levels, levels] and the row scales, from a[m, k] (row stride lda). */
export function quantizeRowsRef(a: ArrayLike<number>, m: number, k: number, lda: number, levels: number): { q: Int32Array; scales: Float32Array } {
  const q = new Int32Array(m * k);
  const scales = new Float32Array(m);
  for (let i = 0; i < m; i++) {
    let top = 0;
    for (let j = 0; j < k; j++) top = Math.max(top, Math.abs(a[i * lda + j]));
    const inv = top > TINY ? f(levels / top) : 0;
    scales[i] = f(top / levels);
    for (let j = 0; j < k; j++) q[i * k + j] = nearestEven(f(a[i * lda + j] * inv));
  }
  return { q, scales };
}

/**
 * matmulQ8 without its activation: f32(Σ q[i] · wq[j]) · (sw[j] · sa[i]) + bias[j], rounded as
 * the kernel rounds (dense [m, n]); wq [n, k] int8, sw [n].
 */
export function matmulQ8Ref(
  a: ArrayLike<number>, m: number, k: number, lda: number,
  wq: Int8Array, sw: Float32Array, bias: Float32Array | null, n: number, levels: number,
): Float32Array {
  const { q, scales } = quantizeRowsRef(a, m, k, lda, levels);
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let kk = 0; kk < k; kk++) acc += q[i * k + kk] * wq[j * k + kk];
      out[i * n + j] = f(f(f(acc) * f(sw[j] * scales[i])) + (bias ? bias[j] : 0));
    }
  }
  return out;
}
