// Scalar references of the elementwise kernels (GELU is in ./math.ts).

export function relu(x: ArrayLike<number>): Float32Array {
  return Float32Array.from(x, (v) => (v < 0 ? 0 : v));
}

/** SiLU (swish) in float64: x / (1 + e^-x). */
export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

export function add(a: ArrayLike<number>, b: ArrayLike<number>): Float32Array {
  return Float32Array.from(a, (v, i) => v + b[i]);
}

/** out[i, :] = table[ids[i], :] · scale + pos[i, :] (pos null: none), in float64. */
export function embed(table: ArrayLike<number>, ids: ArrayLike<number>, pos: ArrayLike<number> | null, dModel: number, scale: number): Float64Array {
  const out = new Float64Array(ids.length * dModel);
  for (let i = 0; i < ids.length; i++) {
    for (let j = 0; j < dModel; j++) out[i * dModel + j] = table[ids[i] * dModel + j] * scale + (pos ? pos[i * dModel + j] : 0);
  }
  return out;
}

/** The index of the largest element: the lowest index wins a tie, NaN never wins (all NaN: 0). */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 0; i < x.length; i++) if (x[i] > x[best] || (Number.isNaN(x[best]) && !Number.isNaN(x[i]))) best = i;
  return best;
}
