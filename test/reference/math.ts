// Float64 references for the SIMD math of assembly/math.ts.

/**
 * erf(z) in float64 from the series erf(z) = 2/sqrt(pi) e^{-z²} Σ (2z²)^k z / (1·3·…·(2k+1)),
 * whose terms are all positive (no cancellation); |z| >= 6 gives ±1 (erfc(6) < 2^-55).
 */
export function erf(z: number): number {
  if (Number.isNaN(z)) return NaN;
  const a = Math.abs(z);
  if (a >= 6) return Math.sign(z);
  let term = a;
  let sum = a;
  for (let k = 1; term > sum * 1e-17; k++) {
    term *= (2 * a * a) / (2 * k + 1);
    sum += term;
  }
  return Math.sign(z) * (2 / Math.sqrt(Math.PI)) * Math.exp(-a * a) * sum;
}

/** GELU(x) = x Φ(x) = x/2 (1 + erf(x / sqrt 2)), PyTorch's default (exact) form. */
export function gelu(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}
