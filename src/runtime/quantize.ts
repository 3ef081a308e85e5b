import type { Quantized } from './kernels.js';

/** The largest int8 magnitude a weight takes: symmetric, so -128 is never used. */
const LEVELS = 127;

/**
 * A float matrix [rows, cols] as int8 with one scale per row, as wasmformer's q8 weights are:
 * scale = max |row| / 127 and value = round(x / scale) (halves away from zero); a zero row has
 * scale 0. null when a value is not finite: the caller refuses it, naming the tensor.
 */
export function quantizeMatrix(x: Float32Array, rows: number, cols: number): Quantized | null {
  const values = new Int8Array(rows * cols);
  const scales = new Float32Array(rows);
  // Flat indices and truncation of v ± 1/2: three times faster than subarrays and Math.round.
  for (let i = 0, at = 0; i < rows; i++, at += cols) {
    let top = 0;
    let poison = 0; // NaN once a value is NaN or infinite
    for (let j = at; j < at + cols; j++) {
      const a = Math.abs(x[j]);
      poison += a - a;
      if (a > top) top = a;
    }
    if (poison !== 0) return null;
    scales[i] = top / LEVELS;
    if (top === 0) continue;
    const inv = LEVELS / top;
    for (let j = at; j < at + cols; j++) {
      const v = x[j] * inv; // |v| <= 127, up to a rounding the truncation takes back
      values[j] = (v < 0 ? v - 0.5 : v + 0.5) | 0;
    }
  }
  return { values, scales };
}

/** The first index of a value that is not finite, or -1: q8 cannot hold NaN or Infinity. */
export function firstNonFinite(x: Float32Array): number {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return i;
  return -1;
}
