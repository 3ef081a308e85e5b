// qkT, pv and the fused multi-head attention kernel against float64 references, over strided
// slices inside guarded regions (a head's columns of a fused [S, 3·d_model] buffer).
import { beforeAll, describe, expect, it } from 'vitest';
import { WasmformerError } from '../../dist/errors.js';
import type { Region, Runtime } from '../../dist/runtime/index.js';
import { attention, pv, qkT } from '../reference/attention.js';
import { expectClose, ODD_SIZES, rng, runtime } from '../helpers.js';
import { expectGuarded, expectGuards, GUARD, guarded, read, slice, type Slice } from './strided.js';

// Scores are float32 dot products of dk terms in [-1, 1] (four or eight partial sums): at most
// dk · 2^-24 · max|term| apart from float64, 8e-6 at dk = 127. The same bound, relative, holds
// for sums of probabilities times v. Probabilities inherit the scores' absolute error as a
// relative one (p ∝ e^s), plus the softmax's 2e-6.
const DOT_TOL = 1e-5;

let rt: Runtime;
beforeAll(async () => {
  rt = await runtime();
});

/** A random [rows, cols] slice: stride ld = cols + pad, `at` floats into its region. */
function randomSlice(rows: number, cols: number, pad: number, at: number, rand: () => number): Slice {
  return slice(rt, rows, cols, cols + pad, at, () => rand());
}

function view(s: Slice) {
  return { data: rt.arena.view(s.region), at: s.at, ld: s.ld };
}

describe('qkT', () => {
  it('matches the reference for every odd sq, sk and dk, on strided rows', () => {
    const rand = rng(1);
    for (const sq of [1, 3, 8, 17]) {
      for (const sk of ODD_SIZES) {
        for (const dk of ODD_SIZES) {
          const mark = rt.arena.mark();
          const pad = (sq + sk + dk) % 3;
          const q = randomSlice(sq, dk, 2 * pad, pad, rand);
          const k = randomSlice(sk, dk, pad, 1, rand);
          const out = slice(rt, sq, sk, sk + pad, 2, () => 0);
          const want = qkT(view(q), view(k), sq, sk, dk, 0.125);
          rt.kernels.qkT(out.region, out.at, q.region, q.at, k.region, k.at, sq, sk, dk, q.ld, k.ld, out.ld, 0.125);
          expectClose(read(rt, out), want, DOT_TOL, DOT_TOL);
          for (const s of [q, k, out]) expectGuards(rt, s);
          rt.arena.reset(mark);
        }
      }
    }
  });

  it('covers every odd sq as well', () => {
    const rand = rng(2);
    for (const sq of ODD_SIZES) {
      const q = randomSlice(sq, 9, 1, 0, rand);
      const k = randomSlice(5, 9, 0, 0, rand);
      const out = slice(rt, sq, 5, 5, 0, () => 0);
      rt.kernels.qkT(out.region, 0, q.region, 0, k.region, 0, sq, 5, 9, q.ld, 9, 5, 1.5);
      expectClose(read(rt, out), qkT(view(q), view(k), sq, 5, 9, 1.5), DOT_TOL, DOT_TOL);
    }
  });
});

describe('pv', () => {
  it('matches the reference for every odd sq, sk and dv, on strided rows', () => {
    const rand = rng(3);
    for (const sq of [1, 3, 8]) {
      for (const sk of ODD_SIZES) {
        for (const dv of [...ODD_SIZES, 64]) {
          const mark = rt.arena.mark();
          const pad = (sq + sk + dv) % 3;
          const p = slice(rt, sq, sk, sk + pad, pad, () => rand(0, 1));
          const v = randomSlice(sk, dv, 2 * pad, 1, rand);
          const out = slice(rt, sq, dv, dv + pad, 3, () => 0);
          const want = pv(view(p), view(v), sq, sk, dv);
          rt.kernels.pv(out.region, out.at, p.region, p.at, v.region, v.at, sq, sk, dv, p.ld, v.ld, out.ld);
          expectClose(read(rt, out), want, DOT_TOL, DOT_TOL);
          for (const s of [p, v, out]) expectGuards(rt, s);
          rt.arena.reset(mark);
        }
      }
    }
  });
});

interface Case {
  sq: number;
  sk: number;
  nhead: number;
  dk: number;
  causalOffset: number;
  padded: number; // probability of a padded key; 0: no keyMask
  headStride: 'shared' | 'each' | 'gap'; // 0, sq·sk, or sq·sk + 3 (guard values between heads)
  fused?: boolean; // q, k, v as column blocks of one [S, 3·width] layout (stride 3·width)
}

function check(c: Case, seed: number): void {
  const rand = rng(seed);
  const mark = rt.arena.mark();
  const width = c.nhead * c.dk;
  // A fused projection has stride 3·width and the slice at column 0, width or 2·width; otherwise
  // a small pad. The slices live in separate regions so that their guards can be checked.
  const ld = (m: number) => (c.fused ? 3 * width : width + ((seed + m) % 3));
  const q = slice(rt, c.sq, width, ld(0), c.fused ? 0 : 1, () => rand());
  const k = slice(rt, c.sk, width, ld(1), c.fused ? width : 2, () => rand());
  const v = slice(rt, c.sk, width, ld(2), c.fused ? 2 * width : 0, () => rand());
  const out = slice(rt, c.sq, width, ld(3), 1, () => 0);
  const maskData = c.padded > 0 ? Float32Array.from({ length: c.sk }, () => (rand(0, 1) < c.padded ? -Infinity : 0)) : null;
  const keyMask = maskData ? guarded(rt, maskData, 'keyMask') : null;
  const block = c.sq * c.sk;
  const headStride = c.headStride === 'shared' ? 0 : c.headStride === 'each' ? block : block + 3;
  const probs = guarded(rt, new Float32Array((c.nhead - 1) * headStride + block).fill(GUARD), 'probs');
  const scale = 1 / Math.sqrt(c.dk);
  rt.kernels.attention(
    out.region, out.at, q.region, q.at, k.region, k.at, v.region, v.at, probs, c.sq, c.sk, c.nhead, c.dk,
    q.ld, k.ld, v.ld, out.ld, scale, c.causalOffset, keyMask, headStride,
  );
  const want = attention(view(q), view(k), view(v), c.sq, c.sk, c.nhead, c.dk, Math.fround(scale), c.causalOffset, maskData);
  expectClose(read(rt, out), want.out, DOT_TOL, DOT_TOL);
  const got = rt.arena.view(probs);
  const heads = c.headStride === 'shared' ? [c.nhead - 1] : Array.from({ length: c.nhead }, (_, h) => h);
  for (const h of heads) {
    const at = c.headStride === 'shared' ? 0 : h * headStride;
    const p = got.subarray(at, at + block);
    expectClose(p, want.probs[h], 1e-9, DOT_TOL);
    for (let e = 0; e < block; e++) {
      const [i, j] = [Math.floor(e / c.sk), e % c.sk];
      const masked = (c.causalOffset >= 0 && j > i + c.causalOffset) || (maskData !== null && maskData[j] === -Infinity);
      if (masked && p[e] !== 0) expect.fail(`head ${h} query ${i} key ${j} is masked but has probability ${p[e]}`);
    }
    if (c.headStride === 'gap' && h > 0) expect(Array.from(got.subarray(at - 3, at))).toEqual([GUARD, GUARD, GUARD]);
  }
  for (const s of [q, k, v, out]) expectGuards(rt, s);
  expectGuarded(rt, probs);
  if (keyMask) expectGuarded(rt, keyMask);
  rt.arena.reset(mark);
}

describe('attention', () => {
  it('matches the reference built from qkT, softmax and pv at odd sizes, for 1 to 3 heads', () => {
    let seed = 1;
    for (const nhead of [1, 2, 3]) {
      for (const dk of [1, 2, 5, 8, 17]) {
        for (const sq of [1, 3, 9]) {
          for (const sk of ODD_SIZES) check({ sq, sk, nhead, dk, causalOffset: -1, padded: 0, headStride: 'each' }, seed++);
        }
      }
    }
  });

  it('covers every odd dk and sk, and every odd sq', () => {
    let seed = 500;
    for (const dk of ODD_SIZES) for (const sk of ODD_SIZES) check({ sq: 3, sk, nhead: 2, dk, causalOffset: -1, padded: 0, headStride: 'each' }, seed++);
    for (const sq of ODD_SIZES) check({ sq, sk: 9, nhead: 2, dk: 7, causalOffset: -1, padded: 0.2, headStride: 'each' }, seed++);
  });

  it('applies the causal mask: offset 0 for self-attention, k > 0 for a later query block', () => {
    let seed = 1000;
    for (const sk of ODD_SIZES) {
      check({ sq: sk, sk, nhead: 2, dk: 8, causalOffset: 0, padded: 0, headStride: 'each' }, seed++);
      const sq = Math.min(sk, 3); // the last sq of sk positions: query i sits at position sk - sq + i
      check({ sq, sk, nhead: 3, dk: 5, causalOffset: sk - sq, padded: 0, headStride: 'gap' }, seed++);
      if (sk > 2) check({ sq: 2, sk, nhead: 1, dk: 9, causalOffset: 1, padded: 0, headStride: 'each' }, seed++);
    }
  });

  it('applies the key-padding mask, alone and with the causal mask, and zeroes fully masked rows', () => {
    let seed = 2000;
    for (const sk of ODD_SIZES) {
      check({ sq: 5, sk, nhead: 2, dk: 8, causalOffset: -1, padded: 0.3, headStride: 'each' }, seed++);
      check({ sq: Math.min(sk, 7), sk, nhead: 3, dk: 2, causalOffset: 0, padded: 0.3, headStride: 'gap' }, seed++);
      check({ sq: 2, sk, nhead: 2, dk: 4, causalOffset: -1, padded: 1, headStride: 'each' }, seed++);
    }
  });

  it('reuses one probability scratch for every head when headStride is 0', () => {
    let seed = 3000;
    for (const sk of [1, 8, 33]) check({ sq: 4, sk, nhead: 3, dk: 8, causalOffset: 0, padded: 0.2, headStride: 'shared' }, seed++);
  });

  it('handles the Transformer shapes on fused [S, 3·d_model] projections', () => {
    let seed = 4000;
    // d_model 512 = 8 heads of 64: encoder self-attention with padding, decoder prefill,
    // decoding one query over a cache of 1..128 keys, cross-attention.
    check({ sq: 37, sk: 37, nhead: 8, dk: 64, causalOffset: -1, padded: 0.1, headStride: 'each', fused: true }, seed++);
    check({ sq: 128, sk: 128, nhead: 8, dk: 64, causalOffset: 0, padded: 0, headStride: 'shared', fused: true }, seed++);
    for (const sk of [1, 2, 5, 64, 127, 128]) {
      check({ sq: 1, sk, nhead: 8, dk: 64, causalOffset: sk - 1, padded: 0, headStride: 'shared', fused: true }, seed++);
    }
    check({ sq: 9, sk: 23, nhead: 8, dk: 64, causalOffset: -1, padded: 0.2, headStride: 'each' }, seed++);
    // d_model 6 = 3 heads of 2.
    check({ sq: 11, sk: 11, nhead: 3, dk: 2, causalOffset: 0, padded: 0.2, headStride: 'each', fused: true }, seed++);
    check({ sq: 1, sk: 11, nhead: 3, dk: 2, causalOffset: 10, padded: 0, headStride: 'shared', fused: true }, seed++);
  });

  it('is rejected by the wrapper when a slice or the probabilities fall outside their regions', () => {
    const a = rt.arena.alloc(4 * 8, 'a'); // [4, 8]: two heads of 4
    const probs = rt.arena.alloc(2 * 16, 'probs');
    const mask = rt.arena.alloc(3, 'mask');
    const call = (o: Partial<{ sq: number; sk: number; ldq: number; headStride: number; mask: Region | null; qAt: number }>) => () =>
      rt.kernels.attention(a, 0, a, o.qAt ?? 0, a, 0, a, 0, probs, o.sq ?? 4, o.sk ?? 4, 2, 4, o.ldq ?? 8, 8, 8, 8, 0.5, -1, o.mask ?? null, o.headStride ?? 16);
    expect(call({})).not.toThrow();
    expect(call({ headStride: 17 })).toThrow(/probs/);
    expect(call({ headStride: -16 })).toThrow(/headStride/);
    expect(call({ headStride: 1.5 })).toThrow(/headStride/);
    expect(call({ sk: 5, headStride: 0 })).toThrow(/k .*does not fit a/);
    expect(call({ qAt: 1 })).toThrow(/q .*does not fit a/);
    expect(call({ ldq: 7 })).toThrow(/q /); // stride below the width of all heads
    expect(call({ mask })).toThrow(/keyMask/);
    expect(call({ sq: 0 })).toThrow(WasmformerError);
    expect(() => rt.kernels.qkT(probs, 0, a, 0, a, 0, 4, 4, 9, 8, 8, 4, 1)).toThrow(/qkT: q/);
    expect(() => rt.kernels.qkT(probs, 20, a, 0, a, 0, 4, 4, 8, 8, 8, 4, 1)).toThrow(/qkT: out/);
    expect(() => rt.kernels.pv(a, 0, probs, 0, a, 0, 4, 4, 8, 10, 8, 8)).toThrow(/pv: p/); // 3 · 10 + 4 > 32
    expect(() => rt.kernels.pv(a, 0, probs, 0, a, 0, 4, 5, 8, 5, 8, 8)).toThrow(/pv: v/);
  });
});
