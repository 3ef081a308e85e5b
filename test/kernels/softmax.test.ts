// The softmax and log-softmax kernels against a float64 reference: every size in ODD_SIZES for rows and columns,
// strided rows inside guarded regions, causal and padding masks checked position by position.
import { beforeAll, describe, expect, it } from 'vitest';
import { WasmformerError } from '../../dist/errors.js';
import type { Region, Runtime } from '../../dist/runtime/index.js';
import { logSoftmax, softmax } from '../reference/softmax.js';
import { expectClose, ODD_SIZES, rng, runtime } from '../helpers.js';
import { expectGuards, read, slice } from './strided.js';

// The kernel rounds scale · x once (|t| <= 5 here: 3e-7 relative on e^t), exp has relative error
// <= 2e-7 and the float32 sum of up to 127 terms adds up to ~16 · 6e-8 (eight partial sums):
// 2e-6 relative covers all three. The absolute part only matters for outputs below 1e-9.
const RTOL = 2e-6;
const ATOL = 1e-12;

let rt: Runtime;
beforeAll(async () => {
  rt = await runtime();
});

/** keyMask region of cols entries, each -Infinity with probability p (key 0 never, when keep0). */
function maskRegion(cols: number, rand: () => number, p: number): [Region, Float32Array] {
  const data = Float32Array.from({ length: cols }, () => (rand(0, 1) < p ? -Infinity : 0));
  const region = rt.arena.alloc(cols, 'keyMask');
  rt.arena.view(region).set(data);
  return [region, data];
}

interface Case {
  rows: number;
  cols: number;
  scale: number;
  causalOffset: number;
  masked: number; // probability of a padded key; 0: no keyMask
  lo?: number;
  hi?: number;
}

/** Runs the kernel on one random strided case and checks it against the reference. */
function check(c: Case, seed: number): void {
  const rand = rng(seed);
  const mark = rt.arena.mark();
  const ld = c.cols + (seed % 3) * 5; // dense rows, or a gap of 5 or 10 guard floats
  const at = seed % 4;
  const x = slice(rt, c.rows, c.cols, ld, at, () => rand(c.lo ?? -5, c.hi ?? 5));
  const input = read(rt, x);
  const [mask, maskData] = c.masked > 0 ? maskRegion(c.cols, rand, c.masked) : [null, null];
  rt.kernels.softmax(x.region, x.at, c.rows, c.cols, ld, c.scale, c.causalOffset, mask);
  const got = read(rt, x);
  const want = softmax(input, c.rows, c.cols, c.scale, c.causalOffset, maskData);
  expectClose(got, want, ATOL, RTOL);
  for (let i = 0; i < c.rows; i++) {
    let sum = 0;
    let visible = 0;
    for (let j = 0; j < c.cols; j++) {
      const isMasked = (c.causalOffset >= 0 && j > i + c.causalOffset) || (maskData !== null && maskData[j] === -Infinity);
      if (isMasked && got[i * c.cols + j] !== 0) expect.fail(`row ${i} key ${j} is masked but holds ${got[i * c.cols + j]}`);
      if (!isMasked) visible++;
      sum += got[i * c.cols + j];
    }
    // A row sums to 1 up to the float32 sum's rounding (cols · 2^-24 at worst), or is all zeros.
    expect(Math.abs(sum - (visible > 0 ? 1 : 0))).toBeLessThanOrEqual(1e-6 + c.cols * 6e-8);
  }
  expectGuards(rt, x);
  rt.arena.reset(mark);
}

describe('softmax', () => {
  it('matches the reference at every odd size, unmasked, with strided rows', () => {
    // Scale 1 and any other scale run different loops (no multiply at all for 1).
    let seed = 1;
    for (const scale of [0.125, 1]) {
      for (const rows of ODD_SIZES) for (const cols of ODD_SIZES) check({ rows, cols, scale, causalOffset: -1, masked: 0 }, seed++);
    }
  });

  it('applies a non-power-of-two scale', () => {
    let seed = 100;
    for (const cols of ODD_SIZES) check({ rows: 3, cols, scale: 1 / Math.sqrt(3), causalOffset: -1, masked: 0 }, seed++);
  });

  it('zeroes causally masked keys exactly: causal offsets 0, 1 and 5 at every odd size', () => {
    let seed = 200;
    for (const causalOffset of [0, 1, 5]) {
      for (const rows of ODD_SIZES) for (const cols of ODD_SIZES) check({ rows, cols, scale: 0.125, causalOffset, masked: 0 }, seed++);
    }
  });

  it('zeroes padded keys exactly, alone and with the causal mask', () => {
    let seed = 300;
    for (const causalOffset of [-1, 0, 3]) {
      for (const rows of [1, 5, 17]) {
        for (const cols of ODD_SIZES) {
          check({ rows, cols, scale: 0.125, causalOffset, masked: 0.3 }, seed++);
          check({ rows, cols, scale: 1, causalOffset, masked: 0.3 }, seed++);
        }
      }
    }
  });

  it('turns rows with every key masked into zeros, without NaN', () => {
    for (const cols of ODD_SIZES) {
      // Every key padded; then key 0 padded under causal offset 0, so that row 0 sees nothing.
      check({ rows: 3, cols, scale: 1, causalOffset: -1, masked: 1 }, 400 + cols);
      const x = slice(rt, 2, cols, cols, 0, () => 1);
      const mask = rt.arena.alloc(cols, 'keyMask');
      rt.arena.view(mask)[0] = -Infinity;
      rt.kernels.softmax(x.region, 0, 2, cols, cols, 1, 0, mask);
      const got = read(rt, x);
      expect(Array.from(got.subarray(0, cols))).toEqual(new Array(cols).fill(0));
      if (cols > 1) expect(got[cols + 1]).toBe(1); // row 1 sees keys 0 (padded) and 1
    }
  });

  it('stays finite and exact for logits around ±1e4', () => {
    let seed = 500;
    for (const cols of ODD_SIZES) {
      check({ rows: 3, cols, scale: 1, causalOffset: -1, masked: 0, lo: 1e4 - 3, hi: 1e4 + 3 }, seed++);
      check({ rows: 3, cols, scale: 0.5, causalOffset: -1, masked: 0.2, lo: -1e4 - 3, hi: -1e4 + 3 }, seed++);
      check({ rows: 3, cols, scale: 1, causalOffset: 1, masked: 0, lo: -1e4, hi: 1e4 }, seed++);
    }
  });

  it('computes e^t to 2e-7 relative down to 2^-126 and flushes below, in the SIMD body and the tail', () => {
    // Rows [0, t, ..., t]: for t < -20 the sum is exactly 1 in float32, so every t entry is e^t
    // as the kernel's exp computes it. Eight columns run the SIMD body, two the scalar tail.
    const ts = Float32Array.from({ length: 20_001 }, (_, i) => -20 - (90 * i) / 20_000);
    for (const cols of [2, 8]) {
      for (const scale of [1, 0.5]) {
        const x = slice(rt, ts.length, cols, cols, 0, (i, j) => (j === 0 ? 0 : ts[i] / scale));
        rt.kernels.softmax(x.region, 0, ts.length, cols, cols, scale, -1, null);
        const got = read(rt, x);
        for (let i = 0; i < ts.length; i++) {
          const want = Math.exp(ts[i]);
          const e = got[i * cols + cols - 1];
          if (want >= 2 ** -126 ? !(Math.abs(e - want) <= 2e-7 * want) : e !== 0) expect.fail(`e^${ts[i]}: got ${e}, want ${want}`);
        }
      }
    }
  });

  it('handles the Transformer shapes: 8 heads x 128 queries x 128 keys, and one decoded query over 127 keys', () => {
    check({ rows: 8 * 128, cols: 128, scale: 0.125, causalOffset: 0, masked: 0 }, 600);
    check({ rows: 8 * 128, cols: 128, scale: 0.125, causalOffset: -1, masked: 0.1 }, 601);
    check({ rows: 1, cols: 127, scale: 0.125, causalOffset: 126, masked: 0 }, 602);
  });

  it('is rejected by the wrapper when a slice falls outside its region', () => {
    const x = rt.arena.alloc(20, 'x');
    const mask = rt.arena.alloc(4, 'mask');
    expect(() => rt.kernels.softmax(x, 0, 4, 5, 5, 1, -1, null)).not.toThrow();
    expect(() => rt.kernels.softmax(x, 1, 4, 5, 5, 1, -1, null)).toThrow(WasmformerError);
    expect(() => rt.kernels.softmax(x, 0, 3, 5, 8, 1, -1, null)).toThrow(/does not fit x/); // 2 · 8 + 5 > 20
    expect(() => rt.kernels.softmax(x, 0, 2, 5, 4, 1, -1, null)).toThrow(/stride 4/); // ld < cols
    expect(() => rt.kernels.softmax(x, 0, 4, 5, 5, 1, -1, mask)).toThrow(/keyMask/);
    expect(() => rt.kernels.softmax(x, 0, 0, 5, 5, 1, -1, null)).toThrow(/rows must be a positive integer/);
    expect(() => rt.kernels.softmax(x, 0.5, 1, 5, 5, 1, -1, null)).toThrow(WasmformerError);
  });
});

describe('logSoftmax', () => {
  /** Runs the kernel on one random strided [rows, cols] slice, some entries -Infinity with probability p, against the reference. */
  function checkLog(rows: number, cols: number, seed: number, p = 0, lo = -8, hi = 8): void {
    const rand = rng(seed);
    const mark = rt.arena.mark();
    const ld = cols + (seed % 3) * 3;
    const x = slice(rt, rows, cols, ld, seed % 4, () => (rand(0, 1) < p ? -Infinity : rand(lo, hi)));
    const input = read(rt, x);
    rt.kernels.logSoftmax(x.region, x.at, rows, cols, ld);
    const got = read(rt, x);
    const want = logSoftmax(input, rows, cols);
    // Each output is (x - max) - log(sum): the subtraction's rounding (|x - max| <= 16 here: 1e-6)
    // and log(sum)'s error (sum's relative error 2e-6, so 2e-6 absolute) bound it.
    for (let i = 0; i < want.length; i++) {
      const ok = want[i] === -Infinity ? got[i] === -Infinity : Math.abs(got[i] - want[i]) <= 4e-6 + 1e-6 * Math.abs(want[i]);
      if (!ok) expect.fail(`[${Math.floor(i / cols)}, ${i % cols}] of ${rows}x${cols}: got ${got[i]}, want ${want[i]}`);
    }
    expectGuards(rt, x);
    rt.arena.reset(mark);
  }

  it('matches the reference at every odd size, with strided rows', () => {
    let seed = 700;
    for (const rows of ODD_SIZES) for (const cols of ODD_SIZES) checkLog(rows, cols, seed++);
  });

  it('keeps banned (-Infinity) entries and rows of them as they are, and holds at a vocabulary of 58101', () => {
    let seed = 900;
    for (const cols of ODD_SIZES) checkLog(3, cols, seed++, 0.4);
    checkLog(2, 7, seed++, 1); // every entry -Infinity: no NaN
    checkLog(4, 58101, seed++, 0.01, -30, 10);
  });

  it('stays finite for logits around ±1e4', () => {
    checkLog(3, 65, 950, 0, 1e4 - 5, 1e4 + 5);
    checkLog(3, 65, 951, 0, -1e4 - 5, -1e4 + 5);
  });

  it('is rejected by the wrapper when a slice falls outside its region', () => {
    const x = rt.arena.alloc(20, 'x');
    expect(() => rt.kernels.logSoftmax(x, 0, 4, 5, 5)).not.toThrow();
    expect(() => rt.kernels.logSoftmax(x, 1, 4, 5, 5)).toThrow(/does not fit x/);
    expect(() => rt.kernels.logSoftmax(x, 0, 0, 5, 5)).toThrow(/rows must be a positive integer/);
  });
});
