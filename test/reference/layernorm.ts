// Scalar float64 reference of the layernorm kernel.

/**
 * LayerNorm(x + r) · gamma + beta per row of a dense [rows, n] array, as torch.nn.LayerNorm
 * (biased variance). v = x + r is rounded to float32 first, as the kernel (and PyTorch) store it.
 * Returns [out, v].
 */
export function layernorm(x: ArrayLike<number>, r: ArrayLike<number> | null, gamma: ArrayLike<number>, beta: ArrayLike<number>, rows: number, n: number, eps: number): [Float64Array, Float32Array] {
  const out = new Float64Array(rows * n);
  const v = Float32Array.from({ length: rows * n }, (_, e) => x[e] + (r ? r[e] : 0));
  for (let i = 0; i < rows; i++) {
    let mean = 0;
    for (let j = 0; j < n; j++) mean += v[i * n + j];
    mean /= n;
    let variance = 0;
    for (let j = 0; j < n; j++) variance += (v[i * n + j] - mean) ** 2;
    variance /= n;
    const rstd = 1 / Math.sqrt(variance + eps);
    for (let j = 0; j < n; j++) out[i * n + j] = (v[i * n + j] - mean) * rstd * gamma[j] + beta[j];
  }
  return [out, v];
}
