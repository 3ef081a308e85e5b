// exp4, gelu4 and silu4 (assembly/math.ts), through the vexp, gelu and silu elementwise kernels, against
// float64 references over dense grids that cover every range the kernels meet.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../dist/runtime/index.js';
import { silu } from '../reference/elementwise.js';
import { erf, gelu } from '../reference/math.js';
import { ODD_SIZES, runtime } from '../helpers.js';

const FLT_MIN = 2 ** -126; // the smallest normal float32
const DENORM_MIN = 2 ** -149;

let rt: Runtime;
beforeAll(async () => {
  rt = await runtime();
});

/** Runs an elementwise kernel over xs and returns a copy of its output. */
function run(kernel: 'vexp' | 'gelu' | 'silu', xs: ArrayLike<number>): Float32Array {
  const mark = rt.arena.mark();
  const x = rt.arena.alloc(xs.length, 'x');
  const out = rt.arena.alloc(xs.length, 'out');
  rt.arena.view(x).set(xs);
  rt.kernels.unary(kernel, out, x, xs.length);
  const got = rt.arena.view(out).slice();
  rt.arena.reset(mark);
  return got;
}

/** count float32 values evenly spaced over [lo, hi]. */
function grid(lo: number, hi: number, count: number): Float32Array {
  return Float32Array.from({ length: count }, (_, i) => lo + ((hi - lo) * i) / (count - 1));
}

describe('exp4', () => {
  it('has relative error <= 2e-7 wherever e^x is a normal float32', () => {
    // [-88, 89] end to end, and [-1, 1] (where r = x) at a finer step.
    const xs = new Float32Array([...grid(-87.33, 88.72, 1_000_001), ...grid(-1, 1, 200_001)]);
    const got = run('vexp', xs);
    let worst = 0;
    for (let i = 0; i < xs.length; i++) {
      const want = Math.exp(xs[i]);
      if (want < FLT_MIN || want > 3.4e38) continue;
      worst = Math.max(worst, Math.abs(got[i] - want) / want);
    }
    // The float32 result alone rounds by up to 2^-24 = 6e-8 relative; the polynomial (3e-9) and
    // the dozen roundings before it stay below another 1e-7 (measured 9.6e-8 and 7.5e-8 fused).
    expect(worst).toBeLessThanOrEqual(2e-7);
  });

  it('rounds denormal results to within one denormal step and underflows to exactly 0', () => {
    const xs = grid(-110, -87.3, 100_001);
    const got = run('vexp', xs);
    for (let i = 0; i < xs.length; i++) {
      const want = Math.exp(xs[i]);
      if (!(Math.abs(got[i] - want) <= DENORM_MIN)) expect.fail(`e^${xs[i]}: got ${got[i]}, want ${want}`);
      if (xs[i] < -104) expect(got[i]).toBe(0);
    }
  });

  it('maps the special values: -Infinity and huge negatives to 0, 0 to 1, overflow to Infinity, NaN to NaN', () => {
    const got = run('vexp', [-Infinity, -3e38, -1e4, 0, -0, 88.8, 1e4, Infinity, NaN]);
    expect(Array.from(got)).toEqual([0, 0, 0, 1, 1, Infinity, Infinity, Infinity, NaN]);
  });

  it('gives the same bits in the scalar tail as in the SIMD body, at every size', () => {
    const xs = grid(-30, 30, 1000);
    const whole = run('vexp', xs);
    for (const n of ODD_SIZES) {
      for (const at of [0, 1, 2, 3]) {
        const part = run('vexp', xs.subarray(at, at + n));
        expect(part).toEqual(whole.subarray(at, at + n));
      }
    }
  });
});

describe('gelu4', () => {
  it('has absolute error <= 1e-6 against the exact erf form for |x| <= 16', () => {
    const xs = new Float32Array([...grid(-16, 16, 1_600_001), ...grid(-1e-3, 1e-3, 20_001)]);
    const got = run('gelu', xs);
    let worst = 0;
    for (let i = 0; i < xs.length; i++) worst = Math.max(worst, Math.abs(got[i] - gelu(xs[i])));
    // Measured 2.4e-7: half a float32 step of the result near 4 (the tail term that carries the
    // approximation error is at most 0.17 and has relative error < 5e-7). Beyond |x| = 16 a float32
    // step is 1.9e-6, so an absolute 1e-6 bound is the format's limit there; see the next test.
    expect(worst).toBeLessThanOrEqual(1e-6);
  });

  it('is exactly x for large positive x and 0 for very negative x', () => {
    const big = [16.5, 20, 100, 1e6, 1e30, 3e38];
    const got = run('gelu', [...big, ...big.map((v) => -v), Infinity]);
    expect(Array.from(got.subarray(0, big.length))).toEqual(big.map(Math.fround));
    for (let i = big.length; i < 2 * big.length; i++) {
      // x Φ(x) for x <= -16 is below 1e-57; the kernel's Gaussian factor is flushed to 0
      // beyond |x| = 13.2, so it returns 0 (never a denormal).
      expect(got[i]).toBe(0);
    }
    expect(got[2 * big.length]).toBe(Infinity);
    expect(run('gelu', [NaN])[0]).toBeNaN();
  });

  it('agrees with erf at the points PyTorch users check (0, ±1, ±3)', () => {
    const got = run('gelu', [0, 1, -1, 3, -3]);
    expect(got[0]).toBe(0);
    expect(got[1]).toBeCloseTo(0.8413447460685429, 7); // Φ(1)
    expect(got[3]).toBeCloseTo(3 * 0.5 * (1 + erf(3 / Math.SQRT2)), 6);
    expect(got[2]).toBeCloseTo(-0.15865525393145707, 7); // -Φ(-1)
    expect(got[4]).toBeCloseTo(-0.004049694590955, 7);
  });

  it('gives the same bits in the scalar tail as in the SIMD body, at every size', () => {
    const xs = grid(-8, 8, 1000);
    const whole = run('gelu', xs);
    for (const n of ODD_SIZES) {
      for (const at of [0, 1, 3]) expect(run('gelu', xs.subarray(at, at + n))).toEqual(whole.subarray(at, at + n));
    }
  });
});

describe('silu4', () => {
  it('has relative error <= 4e-7 against float64 over [-90, 90], and tiny absolute error where it is tiny', () => {
    const xs = new Float32Array([...grid(-90, 90, 1_800_001), ...grid(-1e-3, 1e-3, 20_001)]);
    const got = run('silu', xs);
    let worst = 0;
    for (let i = 0; i < xs.length; i++) {
      const want = silu(xs[i]);
      worst = Math.max(worst, Math.abs(got[i] - want) / Math.max(Math.abs(want), 1e-30));
    }
    // Measured about 1.5e-7: the exp's 1e-7 and one rounding each of the add and the divide.
    expect(worst).toBeLessThanOrEqual(4e-7);
  });

  it('is x for large x and -0 far below zero, as torch.nn.functional.silu gives them', () => {
    // PyTorch 2.13: silu([100, 1e30, inf, -88, -89, -100, -1e30, -inf, nan, 0, -0]).
    const got = run('silu', [100, 1e30, Infinity, -88, -89, -100, -1e30, -Infinity, NaN, 0, -0]);
    expect(Array.from(got.subarray(0, 3))).toEqual([100, Math.fround(1e30), Infinity]);
    expect(got[3]).toBeCloseTo(-5.328049755387946e-37, 43);
    for (const v of got.subarray(4, 7)) expect(Object.is(v, -0)).toBe(true);
    expect(got[7]).toBeNaN(); // -inf / (1 + e^inf), as PyTorch's
    expect(got[8]).toBeNaN();
    expect(Object.is(got[9], 0)).toBe(true);
    expect(Object.is(got[10], -0)).toBe(true);
  });

  it('gives the same bits in the scalar tail as in the SIMD body, at every size', () => {
    const xs = grid(-12, 12, 1000);
    const whole = run('silu', xs);
    for (const n of ODD_SIZES) {
      for (const at of [0, 1, 3]) expect(run('silu', xs.subarray(at, at + n))).toEqual(whole.subarray(at, at + n));
    }
  });
});
