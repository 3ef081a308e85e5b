import { beforeAll, describe, expect, it } from 'vitest';
import { WasmformerError } from '../../dist/errors.js';
import type { Act, Packed, Region, Runtime } from '../../dist/runtime/index.js';
import { expectClose, ODD_SIZES, rng, runtime } from '../helpers.js';
import { ACTS, matmulRef } from '../reference/matmul.js';

/** One call: sizes, strides (default dense), bias or not, activation. */
interface Case {
  m: number;
  k: number;
  n: number;
  lda?: number;
  ldo?: number;
  ldw?: number;
  bias?: boolean;
  act?: number;
}

// Written around every out slice (and in its row gaps) and checked afterwards: the kernel must
// write exactly the m x n slice.
const GUARD = -12345.5;
const GUARD_LEN = 9;

let rt: Runtime;
beforeAll(async () => {
  rt = await runtime();
});

/** A region holding `data`. */
function regionOf(data: ArrayLike<number>, label: string): Region {
  const region = rt.arena.alloc(data.length, label);
  rt.arena.view(region).set(data);
  return region;
}

/**
 * rows x cols random floats in [-1, 1) with row stride ld; the gaps between rows (columns
 * cols .. ld-1) hold NaN, so that a kernel reading them poisons its result.
 */
function strided(rand: () => number, rows: number, cols: number, ld: number): Float32Array {
  const x = new Float32Array((rows - 1) * ld + cols).fill(NaN);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) x[i * ld + j] = rand();
  return x;
}

/** Largest |x| over the non-NaN elements. */
function maxAbs(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) if (!Number.isNaN(x[i])) s = Math.max(s, Math.abs(x[i]));
  return s;
}

/**
 * How far a float32 result may stray from the float64 reference. A sum of k products, each at
 * most s = max|a|·max|w|, rounds k partial sums of size up to ~s·√k; those errors add up like a
 * random walk to ~2^-24·s·k (one standard deviation is smaller still). 4e-7 ≈ 7·2^-24 per term
 * leaves room for the unlucky tail over the ~10^6 elements checked, for a different summation
 * order (the m = 1 path splits K four ways) and for GELU's own float32 error (its slope is at
 * most 1.13, so it passes input errors on almost unchanged); the 1 covers rounding of the bias
 * and of outputs near 1 when k is small. A wrong index or a lost term errs by ~|a·w| ~ 0.25.
 */
function tolerance(k: number, a: ArrayLike<number>, w: ArrayLike<number>, bias: ArrayLike<number> | null): number {
  return 4e-7 * (k * maxAbs(a) * maxAbs(w) + (bias ? maxAbs(bias) : 0) + 1);
}

/** Packs W (+ bias), runs matmul into a guarded out slice, checks it against the reference. */
function check(c: Case, seed: number): void {
  const { m, k, n } = c;
  const lda = c.lda ?? k;
  const ldo = c.ldo ?? n;
  const ldw = c.ldw ?? k;
  const act = c.act ?? ACTS.none;
  const rand = rng(seed);
  const mark = rt.arena.mark();
  try {
    // W is a row slice (rows 1 .. n) of a larger matrix, as when packing part of in_proj_weight.
    const wAll = strided(rand, n + 2, k, ldw);
    const w = wAll.subarray(ldw);
    const bias = c.bias === false ? null : Float32Array.from({ length: n }, () => rand());
    const a = strided(rand, m, k, lda);
    const packed = rt.kernels.pack(regionOf(wAll, 'w'), ldw, bias && regionOf(bias, 'bias'), n, k, ldw, 'packed');
    const outLen = GUARD_LEN + (m - 1) * ldo + n + GUARD_LEN;
    const out = regionOf(new Float32Array(outLen).fill(GUARD), 'out');
    rt.kernels.matmul(out, GUARD_LEN, regionOf(a, 'a'), 0, packed, m, lda, ldo, act as Act);

    const got = rt.arena.view(out);
    const want = matmulRef(a, w, bias, m, k, n, lda, ldw, act);
    const tol = tolerance(k, a, w, bias);
    const where = `m=${m} k=${k} n=${n} lda=${lda} ldo=${ldo} ldw=${ldw} bias=${!!bias} act=${act}`;
    for (let at = 0; at < outLen; at++) {
      const row = Math.floor((at - GUARD_LEN) / ldo);
      const col = at - GUARD_LEN - row * ldo;
      const inside = row >= 0 && row < m && col < n;
      if (!inside) {
        if (got[at] !== GUARD) throw new Error(`${where}: wrote ${got[at]} outside the out slice, at ${at}`);
      } else if (!(Math.abs(got[at] - want[row * n + col]) <= tol)) {
        throw new Error(`${where}: out[${row}, ${col}] = ${got[at]}, want ${want[row * n + col]} (tol ${tol})`);
      }
    }
  } finally {
    rt.arena.reset(mark);
  }
}

describe('matmul', () => {
  it('matches the reference at every m, k, n in ODD_SIZES', () => {
    let seed = 1;
    for (const m of ODD_SIZES) for (const k of ODD_SIZES) for (const n of ODD_SIZES) check({ m, k, n }, seed++);
  });

  it('takes every count of rows left over by 4-row blocks, in whole and ragged groups of 32 columns', () => {
    // ODD_SIZES has no m = 2 (mod 4); m = 1 and 2 (mod 4) have kernels of their own when n
    // fills groups of 32 columns, and share the 4-row kernel otherwise.
    let seed = 5_000;
    for (const m of [2, 4, 6, 10, 14, 18]) {
      for (const n of [...ODD_SIZES, 32, 64, 96, 100]) {
        for (const k of [1, 2, 7, 33]) check({ m, k, n }, seed++);
      }
    }
  });

  it('reads strided rows of a and writes a strided out slice, touching nothing around it', () => {
    let seed = 10_000;
    for (const m of [...ODD_SIZES, 2, 6]) {
      for (const n of [...ODD_SIZES, 32, 64]) {
        for (const k of [1, 6, 33]) check({ m, k, n, lda: k + 3, ldo: n + 5 }, seed++);
      }
    }
  });

  it('packs a row slice of a wider W (ldw > k), with and without bias', () => {
    let seed = 20_000;
    for (const d of ODD_SIZES) {
      for (const bias of [true, false]) {
        check({ m: 4, k: d, n: 13, ldw: d + 7, bias }, seed++);
        check({ m: 3, k: 20, n: d, ldw: 33, bias }, seed++);
        check({ m: d, k: 9, n: 11, ldw: 10, bias }, seed++);
      }
    }
  });

  it('fuses ReLU and GELU into the epilogue', () => {
    let seed = 30_000;
    for (const act of [ACTS.relu, ACTS.gelu, ACTS.silu]) {
      for (const d of ODD_SIZES) {
        check({ m: d, k: 17, n: 9, act }, seed++);
        check({ m: 5, k: d, n: 12, act, ldo: 20 }, seed++);
        check({ m: 1, k: 31, n: d, act, bias: false }, seed++);
        check({ m: 6, k: 8, n: d, act, lda: 11 }, seed++);
      }
    }
  });

  it('computes the Transformer shapes', () => {
    const shapes: Case[] = [
      { m: 7, k: 512, n: 512 }, { m: 1, k: 512, n: 2048, act: ACTS.relu }, { m: 5, k: 2048, n: 512 },
      { m: 3, k: 64, n: 1000 }, { m: 17, k: 512, n: 2048, act: ACTS.gelu }, { m: 1, k: 2048, n: 512 },
      // q, k, v of one decoded token: row slices of in_proj_weight [3·512, 512] into a [1, 3·512] row.
      { m: 1, k: 512, n: 512, ldw: 512, ldo: 1536 },
      // More rows than fit one chunk of a in L2 (128 rows at k = 2048), the last chunk ragged.
      { m: 131, k: 2048, n: 20, act: ACTS.relu },
    ];
    let seed = 40_000;
    for (const c of shapes) check(c, seed++);
  });

  it('writes packedSize floats when packing, and nothing past them', () => {
    const rand = rng(50_000);
    for (const n of ODD_SIZES) {
      for (const k of [1, 5, 8]) {
        const mark = rt.arena.mark();
        const size = rt.kernels.raw.packedSize(n, k);
        expect(size).toBeGreaterThanOrEqual(n * (k + 1));
        const w = regionOf(strided(rand, n, k, k), 'w');
        const packed = regionOf(new Float32Array(size + GUARD_LEN).fill(GUARD), 'packed');
        rt.kernels.raw.pack(packed.ptr, w.ptr, 0, n, k, k);
        const view = rt.arena.view(packed);
        expect(view.subarray(0, size).includes(GUARD)).toBe(false);
        expect(Array.from(view.subarray(size))).toEqual(new Array(GUARD_LEN).fill(GUARD));
        rt.arena.reset(mark);
      }
    }
  });

  it('reads nothing past the last row of a or the last panel of the weights', () => {
    // Each operand in turn ends exactly where the memory ends: a read past it traps.
    const rand = rng(60_000);
    for (const [m, k, n] of [[1, 5, 3], [1, 33, 17], [1, 7, 64], [2, 5, 32], [3, 7, 9], [6, 9, 1], [9, 64, 8], [6, 3, 40]]) {
      for (const last of ['a', 'packed'] as const) {
        const mark = rt.arena.mark();
        const wData = strided(rand, n, k, k);
        const aData = strided(rand, m, k, k);
        const w = regionOf(wData, 'w');
        const out = rt.arena.alloc(m * n, 'out');
        const size = rt.kernels.raw.packedSize(n, k);
        const other = last === 'a' ? rt.arena.alloc(size, 'packed') : regionOf(aData, 'a');
        // The last region: whole 16-byte units, after a filler that reaches the end of the memory.
        const len = Math.ceil((last === 'a' ? m * k : size) / 4) * 4;
        rt.arena.reserve(rt.arena.used + 4 * len);
        rt.arena.alloc((rt.memory.buffer.byteLength - rt.arena.used) / 4 - len, 'filler');
        const end = rt.arena.alloc(len, last);
        expect(end.ptr + 4 * len).toBe(rt.memory.buffer.byteLength);

        const a = last === 'a' ? end : other;
        const aAt = last === 'a' ? len - m * k : 0;
        rt.arena.view(a).set(aData, aAt);
        const region = last === 'a' ? other : { ...end, ptr: end.ptr + 4 * (len - size), length: size };
        rt.kernels.raw.pack(region.ptr, w.ptr, 0, n, k, k);
        const packed: Packed = { region, n, k, dtype: 'f32' };
        rt.kernels.matmul(out, 0, a, aAt, packed, m, k, n);

        const want = matmulRef(aData, wData, null, m, k, n, k, k, ACTS.none);
        expectClose(rt.arena.view(out), want, tolerance(k, aData, wData, null));
        rt.arena.reset(mark);
      }
    }
  });
});

describe('Kernels.pack and Kernels.matmul', () => {
  it('refuse slices that do not fit their regions, before calling the kernel', () => {
    const mark = rt.arena.mark();
    const w = rt.arena.alloc(6 * 4, 'w'); // [6, 4]
    const bias = rt.arena.alloc(6, 'bias');
    expect(() => rt.kernels.pack(w, 1, bias, 6, 4, 4, 'p')).toThrow(/w .*does not fit w of 24 elements/);
    expect(() => rt.kernels.pack(w, 0, bias, 6, 5, 5, 'p')).toThrow(/does not fit w/);
    expect(() => rt.kernels.pack(w, 0, bias, 6, 4, 3, 'p')).toThrow(/stride 3/);
    expect(() => rt.kernels.pack(w, 0, bias, 7, 3, 3, 'p')).toThrow(/bias .*does not fit bias/);
    expect(() => rt.kernels.pack(w, 0, null, 0, 4, 4, 'p')).toThrow(/n must be a positive integer/);
    expect(() => rt.kernels.pack(w, 0, null, 6, 2.5, 4, 'p')).toThrow(/k must be a positive integer/);
    expect(() => rt.kernels.pack(w, 0, null, 6, 4, 4, 'p')).not.toThrow();

    const packed = rt.kernels.pack(w, 0, bias, 6, 4, 4, 'p'); // out = a[m, 4] · W^T: [m, 6]
    const a = rt.arena.alloc(3 * 4, 'a');
    const out = rt.arena.alloc(3 * 6, 'out');
    rt.arena.view(out).fill(GUARD);
    const calls: [Region, number, Region, number, number, number, number][] = [
      [out, 0, a, 1, 3, 4, 6], // a overruns by one
      [out, 0, a, 0, 3, 5, 6], // a's stride overruns
      [out, 0, a, 0, 3, 3, 6], // a's stride below k
      [out, 1, a, 0, 3, 4, 6], // out overruns
      [out, 0, a, 0, 3, 4, 5], // out's stride below n
      [out, -1, a, 0, 1, 4, 6], // negative offset
      [out, 0, a, 0, 0, 4, 6], // no rows
      [out, 0, a, 0, 1.5, 4, 6], // fractional rows
    ];
    for (const [o, oAt, x, xAt, m, lda, ldo] of calls) {
      expect(() => rt.kernels.matmul(o, oAt, x, xAt, packed, m, lda, ldo)).toThrow(WasmformerError);
    }
    expect(() => rt.kernels.matmul(a, 0, a, 0, packed, 1, 4, 6)).toThrow(/must not be its own input/);
    expect(() => rt.kernels.matmul(out, 0, a, 0, packed, 3, 4, 6, 4 as Act)).toThrow(/act must be/);
    expect(rt.arena.view(out).every((x) => x === GUARD)).toBe(true);
    expect(() => rt.kernels.matmul(out, 0, a, 0, packed, 3, 4, 6)).not.toThrow();
    rt.arena.reset(mark);
  });
});
