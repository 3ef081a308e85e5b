import type { Quantized } from './kernels.js';

/** The largest int8 magnitude a weight takes: symmetric, so -128 is never used. */
const LEVELS = 127;

/**
 * A float matrix [rows, cols] as int8 with one scale per row, as wasmformer's q8 weights are:
 * scale = max |row| / 127 and value = round(x / scale) (halves away from zero); a zero row has
 * scale 0. Non-finite values are refused by the caller, who can name the tensor.
 */
export function quantizeMatrix(x: Float32Array, rows: number, cols: number): Quantized {
  const values = new Int8Array(rows * cols);
  const scales = new Float32Array(rows);
  for (let i = 0; i < rows; i++) {
    const row = x.subarray(i * cols, (i + 1) * cols);
    let top = 0;
    for (let j = 0; j < cols; j++) top = Math.max(top, Math.abs(row[j]));
    scales[i] = top / LEVELS;
    if (top === 0) continue;
    const inv = LEVELS / top;
    const out = values.subarray(i * cols, (i + 1) * cols);
    for (let j = 0; j < cols; j++) {
      const v = row[j] * inv; // |v| <= 127 (up to rounding, which Math.round takes back)
      out[j] = v < 0 ? -Math.round(-v) : Math.round(v);
    }
  }
  return { values, scales };
}

/** The first index of a value that is not finite, or -1: q8 cannot hold NaN or Infinity. */
export function firstNonFinite(x: Float32Array): number {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return i;
  return -1;
}
