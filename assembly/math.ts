// SIMD exp and GELU accurate to float32, shared by every kernel file.
// Constants were fitted offline (minimax, Lawson-reweighted least squares against mpmath) and
// rounded to float32; the errors quoted are measured over dense grids in both builds.
import { madd } from './simd';

// e^x = 2^n · e^r with n = round(x · log2 e) and r = x - n·ln2 in [-ln2/2, ln2/2].
const EXP_LO: f32 = -104.0; // e^-104 < 2^-150: rounds to 0; also maps -Infinity there
const EXP_HI: f32 = 89.0; // e^89 > FLT_MAX: overflows to Infinity, as e^x should
const LOG2E: f32 = 1.44269502;
// Adding 1.5 · 2^23 (+ a bias b) rounds to an integer (to nearest even) held in the low mantissa
// bits: the sum's bits are 0x4b400000 + n + b, so that a shift left by 23 leaves the exponent
// field n + b (the 0x4b4 bits fall off).
const MAGIC: f32 = 12582912.0;
// Cody-Waite: ln2 = LN2_HI + LN2_LO with LN2_HI of 9 bits, so n · LN2_HI is exact for |n| < 2^15.
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -0.000212194442;
// e^r = 1 + r + r^2 (C2 + C3 r + C4 r^2 + C5 r^3 + C6 r^4) on |r| <= ln2/2, relative error 3e-9.
const C2: f32 = 0.49999994;
const C3: f32 = 0.166665211;
const C4: f32 = 0.0416683927;
const C5: f32 = 0.00836874358;
const C6: f32 = 0.00138145196;
// e^x < 2^-126 below this: expNonPositive4 gives 0 there rather than a (slow) denormal.
const FLUSH: f32 = -87.33654;

/** r = x - n·ln2, in two parts so that the big one is exact. */
// @ts-ignore: decorator
@inline function reduce(x: v128, n: v128): v128 {
  return madd(n, f32x4.splat(-LN2_LO), madd(n, f32x4.splat(-LN2_HI), x));
}

/** q with e^r = 1 + r·q, for |r| <= ln2/2 (degree-6 polynomial in all). */
// @ts-ignore: decorator
@inline function expTail(r: v128): v128 {
  let q = madd(f32x4.splat(C6), r, f32x4.splat(C5));
  q = madd(q, r, f32x4.splat(C4));
  q = madd(q, r, f32x4.splat(C3));
  q = madd(q, r, f32x4.splat(C2));
  return madd(q, r, f32x4.splat(1.0));
}

/** e^x in four lanes: relative error below 1e-7 where e^x is a normal float; 0 at -Infinity. */
// @ts-ignore: decorator
@inline export function exp4(x: v128): v128 {
  // pmin/pmax are one instruction each (min/max with IEEE NaN and -0 rules take eight on x64);
  // with x first they keep a NaN x.
  x = f32x4.pmin(f32x4.pmax(x, f32x4.splat(EXP_LO)), f32x4.splat(EXP_HI));
  // Bias 254 = 127 + 127: 2^n is built below as the product of two normal powers of two with
  // exponent fields m >> 1 and m - (m >> 1), m = n + 254, both in [52, 191] for n in
  // [-150, 128]: denormal results round once, in the last multiply, and the top of the range
  // overflows to Infinity.
  const biased = madd(x, f32x4.splat(LOG2E), f32x4.splat(MAGIC + 254));
  const r = reduce(x, f32x4.sub(biased, f32x4.splat(MAGIC + 254)));
  const p = madd(r, expTail(r), f32x4.splat(1.0));
  const half = i32x4.shr_u(biased, 1);
  const s1 = i32x4.shl(half, 23);
  const s2 = i32x4.shl(i32x4.sub(biased, half), 23);
  return f32x4.mul(f32x4.mul(p, s1), s2);
}

/**
 * e^x in four lanes for x <= 0 (softmax's exponents; up to 88 works too), four operations
 * cheaper than exp4: 0 where e^x < 2^-126 (and at -Infinity), so it never yields a denormal;
 * elsewhere relative error below 1e-7, as exp4. NaN stays NaN.
 */
// @ts-ignore: decorator
@inline export function expNonPositive4(x: v128): v128 {
  // n >= -126 above FLUSH: 2^n is one normal float, exponent field n + 127. Below FLUSH (and
  // for -Infinity) the lanes hold garbage, cleared by the final mask.
  const biased = madd(x, f32x4.splat(LOG2E), f32x4.splat(MAGIC + 127));
  const r = reduce(x, f32x4.sub(biased, f32x4.splat(MAGIC + 127)));
  const s = i32x4.shl(biased, 23);
  const e = madd(f32x4.mul(r, s), expTail(r), s); // 2^n (1 + r q), rounded once
  return v128.andnot(e, f32x4.lt(x, f32x4.splat(FLUSH)));
}

// GELU(x) = x Φ(x) = relu(x) - a Φ(-a) with a = |x|: the small tail term a Φ(-a) <= 0.17 carries
// all the rounding, so the absolute error stays at the float32 rounding of the result (no erf
// near ±1 to cancel against 1). Φ(-a) = e^{-a²/2} S(a), S = P(a)/Q(a) (S is Mills' ratio over
// sqrt(2π): smooth, 0.5 at 0, ~1/(a sqrt(2π)) for large a), relative error 3e-7 on [0, 12].
// e^{-a²/2} comes from expNonPositive4: 0 for a > 13.2, so GELU(x) is exactly x or 0 there.
const GELU_A: f32 = 14.5; // keeps a⁴ in Q(a) finite for huge |x|
const P0: f32 = 0.499999851;
const P1: f32 = 0.357753605;
const P2: f32 = 0.117124043;
const P3: f32 = 0.0164806619;
const Q1: f32 = 1.51337671;
const Q2: f32 = 0.94187057;
const Q3: f32 = 0.2933442;
const Q4: f32 = 0.0413173586;

/** GELU, exact erf form (PyTorch's default), four lanes: absolute error below 3e-7. */
// @ts-ignore: decorator
@inline export function gelu4(x: v128): v128 {
  const a = f32x4.pmin(f32x4.abs(x), f32x4.splat(GELU_A));
  const gauss = expNonPositive4(f32x4.mul(f32x4.mul(a, a), f32x4.splat(-0.5)));
  let p = madd(f32x4.splat(P3), a, f32x4.splat(P2));
  p = madd(p, a, f32x4.splat(P1));
  p = madd(p, a, f32x4.splat(P0));
  let q = madd(f32x4.splat(Q4), a, f32x4.splat(Q3));
  q = madd(q, a, f32x4.splat(Q2));
  q = madd(q, a, f32x4.splat(Q1));
  q = madd(q, a, f32x4.splat(1.0));
  const tail = f32x4.mul(a, f32x4.mul(gauss, f32x4.div(p, q)));
  return f32x4.sub(f32x4.pmax(x, f32x4.splat(0.0)), tail);
}

/** SiLU (Marian's "swish"), x · sigmoid(x) = x / (1 + e^-x), four lanes: relative error below 2e-7. */
// @ts-ignore: decorator
@inline export function silu4(x: v128): v128 {
  // e^-x overflows to Infinity for x < -89: x / Infinity is -0, the limit.
  return f32x4.div(x, f32x4.add(f32x4.splat(1.0), exp4(f32x4.neg(x))));
}
