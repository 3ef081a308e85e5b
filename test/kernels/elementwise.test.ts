// The elementwise kernels against scalar references at every size in ODD_SIZES, in place and
// out of place, with guard values around every region.
import { beforeAll, describe, expect, it } from 'vitest';
import { WasmformerError } from '../../dist/errors.js';
import type { Region, Runtime } from '../../dist/runtime/index.js';
import { add, argmax, embed, relu, silu } from '../reference/elementwise.js';
import { gelu } from '../reference/math.js';
import { expectClose, ODD_SIZES, rng, runtime } from '../helpers.js';
import { expectGuarded, guarded } from './strided.js';

let rt: Runtime;
beforeAll(async () => {
  rt = await runtime();
});

const SIZES = [...ODD_SIZES, 512, 2048];

function values(rt: Runtime, r: Region): Float32Array {
  return rt.arena.view(r).slice();
}

describe('gelu, silu, relu, vexp', () => {
  it('map every element, in place and out of place, and write nothing else', () => {
    const rand = rng(1);
    for (const n of SIZES) {
      const data = Float32Array.from({ length: n }, () => rand(-6, 6));
      data[0] = -0;
      for (const kernel of ['gelu', 'silu', 'relu', 'vexp'] as const) {
        const want = kernel === 'gelu' ? data.map(gelu) : kernel === 'silu' ? data.map(silu) : kernel === 'relu' ? relu(data) : data.map(Math.exp);
        const mark = rt.arena.mark();
        const x = guarded(rt, data, 'x');
        const out = guarded(rt, new Float32Array(n), 'out');
        rt.kernels.unary(kernel, out, x, n);
        // gelu, silu and exp: the bounds of test/kernels/math.test.ts; relu: exact.
        if (kernel === 'relu') expect(values(rt, out)).toEqual(want);
        else expectClose(values(rt, out), want, kernel === 'gelu' ? 1e-6 : 0, kernel === 'gelu' ? 0 : kernel === 'silu' ? 4e-7 : 2e-7);
        expect(values(rt, x)).toEqual(data);
        rt.kernels.unary(kernel, x, x, n); // in place
        expect(values(rt, x)).toEqual(values(rt, out));
        expectGuarded(rt, x);
        expectGuarded(rt, out);
        rt.arena.reset(mark);
      }
    }
  });

  it('relu keeps NaN and maps -Infinity to 0, in the SIMD body and the tail alike', () => {
    const data = [NaN, -Infinity, Infinity, -1, NaN, -Infinity, 2];
    const x = guarded(rt, data, 'x');
    rt.kernels.unary('relu', x, x, data.length);
    expect(Array.from(values(rt, x))).toEqual([NaN, 0, Infinity, 0, NaN, 0, 2]);
  });
});

describe('add', () => {
  it('adds at every size, with out aliasing a, b or both', () => {
    const rand = rng(2);
    for (const n of SIZES) {
      const aData = Float32Array.from({ length: n }, () => rand());
      const bData = Float32Array.from({ length: n }, () => rand());
      for (const alias of ['none', 'out=a', 'out=b', 'a=b']) {
        const mark = rt.arena.mark();
        const a = guarded(rt, aData, 'a');
        const b = alias === 'a=b' ? a : guarded(rt, bData, 'b');
        const out = alias === 'out=a' ? a : alias === 'out=b' ? b : guarded(rt, new Float32Array(n), 'out');
        rt.kernels.add(out, a, b, n);
        expect(values(rt, out)).toEqual(alias === 'a=b' ? add(aData, aData) : add(aData, bData)); // one rounding: exact
        for (const t of [a, b, out]) expectGuarded(rt, t);
        rt.arena.reset(mark);
      }
    }
  });

  it('is rejected by the wrapper when a region is shorter than n', () => {
    const a = rt.arena.alloc(8, 'a');
    const short = rt.arena.alloc(7, 'short');
    expect(() => rt.kernels.add(a, a, short, 8)).toThrow(/b .*does not fit short/);
    expect(() => rt.kernels.add(short, a, a, 8)).toThrow(/out/);
    expect(() => rt.kernels.unary('gelu', a, short, 8)).toThrow(/x .*does not fit short/);
    expect(() => rt.kernels.unary('vexp', short, a, 8)).toThrow(/out/);
    expect(() => rt.kernels.unary('relu', a, a, 2.5)).toThrow(WasmformerError);
  });
});

describe('embed', () => {
  /** Runs embed over random ids, with or without positions (each row at its own, in any order), and checks it. */
  function check(n: number, dModel: number, vocab: number, withPos: boolean, seed: number): void {
    const rand = rng(seed);
    const mark = rt.arena.mark();
    const tableData = Float32Array.from({ length: vocab * dModel }, () => rand());
    const idList = Array.from({ length: n }, (_, i) => (i === 0 ? vocab - 1 : i === 1 ? 0 : Math.floor(rand(0, vocab))));
    const posRows = n + 3;
    const positionList = Array.from({ length: n }, (_, i) => (i === 0 ? posRows - 1 : Math.floor(rand(0, posRows))));
    const posData = Float32Array.from({ length: posRows * dModel }, () => rand());
    const table = guarded(rt, tableData, 'table');
    const ids = rt.arena.alloc(n, 'ids');
    rt.arena.i32().set(idList, ids.ptr >> 2);
    const positions = rt.arena.alloc(n, 'positions');
    rt.arena.i32().set(positionList, positions.ptr >> 2);
    const pos = withPos ? guarded(rt, posData, 'pos') : null;
    const out = guarded(rt, new Float32Array(n * dModel), 'out');
    const scale = Math.sqrt(dModel);
    rt.kernels.embed(out, ids, table, vocab, pos, withPos ? positions : null, n, dModel, scale);
    const rows = withPos ? Float32Array.from({ length: n * dModel }, (_, j) => posData[positionList[Math.floor(j / dModel)] * dModel + (j % dModel)]) : null;
    const want = embed(tableData, idList, rows, dModel, Math.fround(scale));
    // One product and one sum in float32 (fused in the relaxed build): two roundings of O(10).
    expectClose(values(rt, out), want, 2e-6, 2e-7);
    for (const t of [table, out, ...(pos ? [pos] : [])]) expectGuarded(rt, t);
    rt.arena.reset(mark);
  }

  it('gathers rows at every odd size, scaled, with and without positions', () => {
    let seed = 1;
    for (const n of ODD_SIZES) for (const dModel of ODD_SIZES) check(n, dModel, 11, seed % 2 === 0, seed++);
  });

  it('handles the Transformer shapes: d_model 512 and 6 over 128 positions', () => {
    check(128, 512, 1000, true, 100);
    check(1, 512, 1000, true, 101);
    check(128, 6, 10, true, 102);
  });

  it('embedPacked reads the same rows bit for bit from the packed matrix (a tied generator), ragged last panel included', () => {
    const rand = rng(404);
    for (const vocab of [1, 7, 8, 9, 17, 33]) {
      for (const dModel of [1, 3, 21, 64]) {
        const mark = rt.arena.mark();
        const table = guarded(rt, Float32Array.from({ length: vocab * dModel }, () => rand()), 'table');
        const bias = guarded(rt, Float32Array.from({ length: vocab }, () => rand()), 'bias'); // a generator's: never read as a row
        const packed = rt.kernels.pack(table, 0, bias, vocab, dModel, dModel, 'packed');
        const n = 5;
        const ids = rt.arena.alloc(n, 'ids');
        rt.arena.i32().set([vocab - 1, 0, Math.floor(vocab / 2), vocab - 1, Math.floor(rand(0, vocab))], ids.ptr >> 2);
        const positions = rt.arena.alloc(n, 'positions');
        rt.arena.i32().set([0, 3, 1, 2, 3], positions.ptr >> 2);
        const pos = guarded(rt, Float32Array.from({ length: 4 * dModel }, () => rand()), 'pos');
        for (const withPos of [true, false]) {
          const want = guarded(rt, new Float32Array(n * dModel), 'want');
          const got = guarded(rt, new Float32Array(n * dModel), 'got');
          rt.kernels.embed(want, ids, table, vocab, withPos ? pos : null, withPos ? positions : null, n, dModel, 22.6);
          rt.kernels.embedPacked(got, ids, packed, withPos ? pos : null, withPos ? positions : null, n, dModel, 22.6);
          expect(values(rt, got)).toEqual(values(rt, want));
          expectGuarded(rt, got);
        }
        rt.arena.reset(mark);
      }
    }
  });

  it('embedPacked is rejected for a table of another width, a region short of its rows and ids past them', () => {
    const mark = rt.arena.mark();
    const table = rt.arena.alloc(9 * 4, 'table');
    const packed = rt.kernels.pack(table, 0, null, 9, 4, 4, 'packed');
    const ids = rt.arena.alloc(1, 'ids');
    const out = rt.arena.alloc(8, 'out');
    rt.arena.i32().set([9], ids.ptr >> 2);
    expect(() => rt.kernels.embedPacked(out, ids, packed, null, null, 1, 4, 1)).toThrow(/id .*9/);
    rt.arena.i32().set([0], ids.ptr >> 2);
    expect(() => rt.kernels.embedPacked(out, ids, packed, null, null, 1, 8, 1)).toThrow(/\[vocab, 8\], got \[9, 4\]/);
    expect(() => rt.kernels.embedPacked(out, ids, { ...packed, n: 90 }, null, null, 1, 4, 1)).toThrow(WasmformerError); // its region holds 9 rows
    rt.arena.reset(mark);
  });

  it('is rejected by the wrapper for ids or positions out of range and regions too small', () => {
    const table = rt.arena.alloc(5 * 4, 'table');
    const ids = rt.arena.alloc(3, 'ids');
    const positions = rt.arena.alloc(3, 'positions');
    const out = rt.arena.alloc(3 * 4, 'out');
    const pos = rt.arena.alloc(4 * 4, 'pos');
    const i32 = rt.arena.i32();
    i32.set([0, 4, 2], ids.ptr >> 2);
    i32.set([3, 0, 1], positions.ptr >> 2);
    expect(() => rt.kernels.embed(out, ids, table, 5, pos, positions, 3, 4, 1)).not.toThrow();
    expect(() => rt.kernels.embed(out, ids, table, 5, pos, null, 3, 4, 1)).toThrow(/positions are required/);
    expect(() => rt.kernels.embed(out, ids, table, 6, null, null, 3, 4, 1)).toThrow(/table/);
    expect(() => rt.kernels.embed(out, ids, table, 5, null, null, 4, 4, 1)).toThrow(/ids/);
    expect(() => rt.kernels.embed(out, ids, table, 5, null, null, 3, 5, 1)).toThrow(/does not fit/);
    for (const bad of [5, -1]) {
      rt.arena.i32()[(ids.ptr >> 2) + 1] = bad;
      expect(() => rt.kernels.embed(out, ids, table, 5, null, null, 3, 4, 1)).toThrow(/id -?\d+ at position 1 is outside the vocabulary/);
    }
    rt.arena.i32()[(ids.ptr >> 2) + 1] = 4;
    for (const bad of [4, -1]) {
      rt.arena.i32()[(positions.ptr >> 2) + 2] = bad;
      expect(() => rt.kernels.embed(out, ids, table, 5, pos, positions, 3, 4, 1)).toThrow(/position -?\d+ at position 2 is outside the position table \[0, 4\)/);
    }
  });
});

describe('argmax', () => {
  /** Checks argmax over data placed at element `at` of a larger region. */
  function check(data: ArrayLike<number>, at = 0): void {
    const mark = rt.arena.mark();
    const x = guarded(rt, [...new Array(at).fill(1e30), ...Array.from(data)], 'x');
    expect(rt.kernels.argmax(x, at, data.length)).toBe(argmax(data));
    rt.arena.reset(mark);
  }

  it('finds the largest at every size and position', () => {
    const rand = rng(3);
    for (const n of [...SIZES, 32000]) {
      const data = Float32Array.from({ length: n }, () => rand());
      check(data);
      for (const where of [0, n - 1, n >> 1]) {
        const copy = data.slice();
        copy[where] = 2;
        check(copy, where % 3);
      }
    }
  });

  it('gives the lowest index on a tie, in the SIMD body and the tail', () => {
    for (const n of SIZES) {
      for (const [first, second] of [[0, n - 1], [1, 5], [3, 4], [n - 2, n - 1], [2, 9]]) {
        if (first < 0 || second >= n || first >= second) continue;
        const data = new Float32Array(n).fill(-1);
        data[first] = 7;
        data[second] = 7;
        check(data);
        expect(argmax(data)).toBe(first);
      }
    }
  });

  it('never picks NaN, and handles -Infinity', () => {
    check([NaN, 1, NaN, 2, NaN, NaN, NaN, NaN, NaN]);
    check([NaN, NaN, NaN, NaN, NaN, -Infinity, NaN]);
    check([NaN, NaN, NaN, NaN, NaN]);
    check([-Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity]);
    check([NaN, -3, NaN, -3]);
    expect(argmax([NaN, NaN, NaN, NaN, NaN, -Infinity, NaN])).toBe(5);
    expect(argmax([NaN, -3, NaN, -3])).toBe(1);
  });

  it('is rejected by the wrapper when the span falls outside the region', () => {
    const x = rt.arena.alloc(10, 'x');
    expect(() => rt.kernels.argmax(x, 1, 10)).toThrow(/does not fit x/);
    expect(() => rt.kernels.argmax(x, 0, 0)).toThrow(/n must be a positive integer/);
  });
});
