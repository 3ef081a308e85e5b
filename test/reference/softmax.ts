// Scalar float64 reference of the softmax kernel.

/**
 * softmax(scale · x + masks) of each of `rows` rows of a dense [rows, cols] array. Key j of row i
 * is masked when causalOffset >= 0 and j > i + causalOffset, or keyMask[j] is -Infinity; masked
 * keys get 0, and a row with every key masked is all zeros.
 */
export function softmax(x: ArrayLike<number>, rows: number, cols: number, scale: number, causalOffset: number, keyMask: ArrayLike<number> | null): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const seen = (j: number) => !(causalOffset >= 0 && j > i + causalOffset) && !(keyMask && keyMask[j] === -Infinity);
    let top = -Infinity;
    for (let j = 0; j < cols; j++) if (seen(j)) top = Math.max(top, scale * x[i * cols + j]);
    if (top === -Infinity) continue;
    let sum = 0;
    for (let j = 0; j < cols; j++) {
      if (!seen(j)) continue;
      const e = Math.exp(scale * x[i * cols + j] - top);
      out[i * cols + j] = e;
      sum += e;
    }
    for (let j = 0; j < cols; j++) out[i * cols + j] /= sum;
  }
  return out;
}

/** log_softmax of each of `rows` rows of a dense [rows, cols] array; -Infinity entries stay so, and a row of them too. */
export function logSoftmax(x: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const row = Array.from({ length: cols }, (_, j) => x[i * cols + j]);
    const top = Math.max(...row);
    if (top === -Infinity) {
      out.fill(-Infinity, i * cols, (i + 1) * cols);
      continue;
    }
    const logSum = Math.log(row.reduce((s, v) => s + Math.exp(v - top), 0));
    row.forEach((v, j) => (out[i * cols + j] = v - top - logSum));
  }
  return out;
}
