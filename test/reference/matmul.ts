// Scalar float64 references for the matmul kernels (assembly/matmul.ts).

/** The fused activations, numbered as the kernel's `act` argument. */
export const ACTS = { none: 0, relu: 1, gelu: 2, silu: 3 } as const;

/**
 * out[m, n] = act(a[m, k] (row stride lda) · W^T + bias), W [n, k] (row stride ldw), accumulated
 * in float64, dense (row stride n). bias null: none.
 */
export function matmulRef(
  a: ArrayLike<number>, w: ArrayLike<number>, bias: ArrayLike<number> | null,
  m: number, k: number, n: number, lda: number, ldw: number, act: number,
): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = bias ? bias[j] : 0;
      for (let kk = 0; kk < k; kk++) s += a[i * lda + kk] * w[j * ldw + kk];
      out[i * n + j] = activate(s, act);
    }
  }
  return out;
}

function activate(x: number, act: number): number {
  if (act === ACTS.relu) return Math.max(x, 0);
  if (act === ACTS.gelu) return geluRef(x);
  if (act === ACTS.silu) return x / (1 + Math.exp(-x));
  return x;
}

/** GELU, exact form: x · Φ(x) = x/2 · erfc(-x/√2), to float64 accuracy. */
export function geluRef(x: number): number {
  return 0.5 * x * erfc(-x / Math.SQRT2);
}

/** erfc(x): the Maclaurin series of erf near 0, a continued fraction in the tails. */
function erfc(x: number): number {
  if (x < -2) return 2 - erfcTail(-x);
  if (x > 2) return erfcTail(x);
  // erf(x) = 2/√π Σ (-1)^j x^(2j+1) / (j! (2j+1)); for |x| <= 2 the terms fall below 1e-17
  // by j = 40 and cancellation costs at most two digits.
  let term = x;
  let sum = x;
  for (let j = 1; j < 60; j++) {
    term *= (-x * x) / j;
    sum += term / (2 * j + 1);
  }
  return 1 - (2 / Math.sqrt(Math.PI)) * sum;
}

/** erfc(x) for x > 2: e^(-x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), evaluated backwards. */
function erfcTail(x: number): number {
  let f = x;
  for (let j = 80; j >= 1; j--) f = x + j / 2 / f;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}
