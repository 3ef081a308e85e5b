// The q8 kernels (assembly/quantized.ts) against scalar references: quantizeRows exactly (its
// bytes in the build's layout), matmulQ8's integer sums and epilogue exactly, activations within
// float32 error, at odd sizes, strides and every leftover of the 4-row and 32-column blocks; and
// quantizeMatrix, the weights' quantizer.
import { beforeAll, describe, expect, it } from 'vitest';
import { WasmformerError } from '../../dist/errors.js';
import { createRuntime, quantizeMatrix, type Act, type Packed, type Region, type Runtime } from '../../dist/runtime/index.js';
import { BUILD, expectClose, ODD_SIZES, rng, runtime } from '../helpers.js';
import { ACTS, matmulRef } from '../reference/matmul.js';
import { activationLevels, matmulQ8Ref, quantizeRowsRef } from '../reference/quantized.js';

const GUARD = -12345.5;
const GUARD_LEN = 9;

let rt: Runtime;
beforeAll(async () => {
  rt = await runtime();
});

function regionOf(r: Runtime, data: Float32Array, label: string): Region {
  const region = r.arena.alloc(data.length, label);
  r.arena.view(region).set(data);
  return region;
}

function bytesOf(r: Runtime, data: Int8Array, label: string): Region {
  const region = r.arena.alloc(Math.ceil(data.length / 4), label);
  r.arena.u8().set(new Uint8Array(data.buffer, data.byteOffset, data.length), region.ptr);
  return region;
}

/** Random int8 weights in [-127, 127] and positive row scales. */
function weights(rand: (lo?: number, hi?: number) => number, n: number, k: number): { wq: Int8Array; sw: Float32Array } {
  return {
    wq: Int8Array.from({ length: n * k }, () => Math.floor(rand(-127, 128))),
    sw: Float32Array.from({ length: n }, () => rand(1e-3, 2e-2)),
  };
}

/** Rows of a with row stride lda, the gaps NaN (a kernel reading them poisons its result); some rows scaled far apart, one all zero. */
function activations(rand: (lo?: number, hi?: number) => number, m: number, k: number, lda: number): Float32Array {
  const a = new Float32Array((m - 1) * lda + k).fill(NaN);
  for (let i = 0; i < m; i++) {
    const scale = i === 2 ? 0 : 10 ** rand(-3, 3);
    for (let j = 0; j < k; j++) a[i * lda + j] = scale * rand();
  }
  return a;
}

interface Case { m: number; k: number; n: number; lda?: number; ldo?: number; bias?: boolean; act?: number }

function check(r: Runtime, c: Case, seed: number): void {
  const { m, k, n } = c;
  const lda = c.lda ?? k;
  const ldo = c.ldo ?? n;
  const act = c.act ?? ACTS.none;
  const rand = rng(seed);
  const mark = r.arena.mark();
  try {
    const { wq, sw } = weights(rand, n, k);
    const bias = c.bias === false ? null : Float32Array.from({ length: n }, () => rand());
    const a = activations(rand, m, k, lda);
    const packed = r.kernels.packQ8Into(r.arena.alloc(r.kernels.packedLengthQ8(n, k), 'packed'), bytesOf(r, wq, 'wq'), regionOf(r, sw, 'sw'), bias && regionOf(r, bias, 'bias'), n, k);
    const rows = { values: r.arena.alloc(Math.ceil((m * r.kernels.quantizedRowBytes(k)) / 4), 'aq'), scales: r.arena.alloc(m, 'sa') };
    const outLen = GUARD_LEN + (m - 1) * ldo + n + GUARD_LEN;
    const out = regionOf(r, new Float32Array(outLen).fill(GUARD), 'out');
    r.kernels.matmulQ8(out, GUARD_LEN, regionOf(r, a, 'a'), 0, packed, m, lda, ldo, act as Act, rows);

    const got = r.arena.view(out);
    const linear = matmulQ8Ref(a, m, k, lda, wq, sw, bias, n, activationLevels(r.build));
    const want = act === ACTS.none ? linear : matmulRef(linear, [1], null, m * n, 1, 1, 1, 1, act);
    const where = `m=${m} k=${k} n=${n} lda=${lda} ldo=${ldo} bias=${!!bias} act=${act}`;
    for (let at = 0; at < outLen; at++) {
      const row = Math.floor((at - GUARD_LEN) / ldo);
      const col = at - GUARD_LEN - row * ldo;
      const inside = row >= 0 && row < m && col < n;
      if (!inside) {
        if (got[at] !== GUARD) throw new Error(`${where}: wrote ${got[at]} outside the out slice, at ${at}`);
        continue;
      }
      const w = want[row * n + col];
      // Exact without an activation; activations within their float32 error.
      const ok = act === ACTS.none ? got[at] === w : Math.abs(got[at] - w) <= 2e-6 * (1 + Math.abs(w));
      if (!ok) throw new Error(`${where}: out[${row}, ${col}] = ${got[at]}, want ${w}`);
    }
  } finally {
    r.arena.reset(mark);
  }
}

describe('quantizeRows', () => {
  it('writes round(a / (max|a| / levels)) per row in the build\'s layout, zero padding, and the scales', () => {
    let seed = 1;
    for (const m of [1, 3, 5]) {
      for (const k of ODD_SIZES) {
        const lda = k + 2;
        const rand = rng(seed++);
        const mark = rt.arena.mark();
        const a = activations(rand, m, k, lda);
        const rowBytes = rt.kernels.quantizedRowBytes(k);
        const values = rt.arena.alloc(Math.ceil((m * rowBytes) / 4), 'aq');
        const scales = rt.arena.alloc(m, 'sa');
        rt.kernels.raw.quantizeRows(values.ptr, scales.ptr, regionOf(rt, a, 'a').ptr, m, k, lda);
        const levels = activationLevels(rt.build);
        const want = quantizeRowsRef(a, m, k, lda, levels);
        expect(rt.arena.view(scales)).toEqual(want.scales);
        const relaxed = rt.build === 'relaxed';
        const bytes = relaxed ? new Uint8Array(rt.memory.buffer, values.ptr, m * rowBytes) : new Int16Array(rt.memory.buffer, values.ptr, m * rowBytes / 2);
        const perRow = rowBytes / (relaxed ? 1 : 2);
        expect(perRow).toBe(Math.ceil(k / 4) * 4);
        for (let i = 0; i < m; i++) {
          const row = Array.from(bytes.subarray(i * perRow, (i + 1) * perRow), (v) => (relaxed ? v - 64 : v));
          const q = [...want.q.subarray(i * k, (i + 1) * k)];
          expect(row, `m=${m} k=${k} row ${i}`).toEqual([...q, ...new Array(perRow - k).fill(0)]);
          expect(Math.max(...q.map(Math.abs))).toBeLessThanOrEqual(levels);
        }
        rt.arena.reset(mark);
      }
    }
  });
});

describe('matmulQ8', () => {
  it('matches the reference exactly at every m, k, n in ODD_SIZES', () => {
    let seed = 100;
    for (const m of ODD_SIZES) for (const k of ODD_SIZES) for (const n of ODD_SIZES) check(rt, { m, k, n }, seed++);
  });

  it('takes every count of rows left over by 4-row blocks, in whole and ragged groups of 32 columns, with and without bias', () => {
    let seed = 5_000;
    for (const m of [1, 2, 4, 6, 10, 14]) {
      for (const n of [32, 64, 96, 100, 7]) {
        for (const k of [1, 2, 4, 7, 33, 512]) check(rt, { m, k, n, bias: seed % 2 === 0 }, seed++);
      }
    }
  });

  it('reads strided rows of a and writes a strided out slice, touching nothing around it', () => {
    let seed = 10_000;
    for (const m of [1, 2, 5, 9]) {
      for (const n of [1, 9, 32, 65]) {
        for (const k of [1, 6, 33]) check(rt, { m, k, n, lda: k + 3, ldo: n + 5 }, seed++);
      }
    }
  });

  it('fuses ReLU, GELU and SiLU', () => {
    let seed = 20_000;
    for (const act of [ACTS.relu, ACTS.gelu, ACTS.silu]) {
      for (const [m, k, n] of [[1, 64, 32], [1, 17, 9], [5, 33, 40], [4, 2048, 8]]) check(rt, { m, k, n, act }, seed++);
    }
  });

  it('sums K up to its limit, 16384, at the extremes of int8 without overflow, and refuses a longer K', () => {
    const mark = rt.arena.mark();
    const levels = activationLevels(rt.build);
    for (const k of [2048, 16384]) {
      const n = 33;
      const wq = new Int8Array(n * k).fill(127);
      for (let j = 0; j < k; j++) wq[k + j] = -127; // column 1 negative
      const sw = new Float32Array(n).fill(1);
      const a = new Float32Array(2 * k).fill(1);
      a.fill(-1, k); // row 1 negative
      const packed = rt.kernels.packQ8Into(rt.arena.alloc(rt.kernels.packedLengthQ8(n, k), 'p'), bytesOf(rt, wq, 'w'), regionOf(rt, sw, 's'), null, n, k);
      const rows = { values: rt.arena.alloc(Math.ceil((2 * rt.kernels.quantizedRowBytes(k)) / 4), 'aq'), scales: rt.arena.alloc(2, 'sa') };
      const out = rt.arena.alloc(2 * n, 'out');
      rt.kernels.matmulQ8(out, 0, regionOf(rt, a, 'a'), 0, packed, 2, k, n, 0 as Act, rows);
      const got = rt.arena.view(out);
      const want = Math.fround(Math.fround(levels * 127 * k) * Math.fround(1 / levels));
      expect([got[0], got[1], got[n], got[n + 1]]).toEqual([want, -want, -want, want]);
      rt.arena.reset(mark);
    }
    const w = rt.arena.alloc(Math.ceil(16385 / 4), 'w');
    expect(() => rt.kernels.packQ8Into(rt.arena.alloc(rt.kernels.packedLengthQ8(1, 16385), 'p'), w, rt.arena.alloc(1, 's'), null, 1, 16385))
      .toThrow(/packQ8: k \(16385\) is over 16384/);
    rt.arena.reset(mark);
  });

  it('reads nothing past the last quantized row or the last panel of the weights', () => {
    // Each operand in turn ends exactly where the memory ends: a read past it traps.
    const rand = rng(60_000);
    for (const [m, k, n] of [[1, 5, 3], [1, 33, 17], [1, 7, 64], [2, 5, 32], [3, 7, 9], [6, 9, 1], [9, 64, 8]]) {
      for (const last of ['rows', 'packed'] as const) {
        const mark = rt.arena.mark();
        const { wq, sw } = weights(rand, n, k);
        const a = activations(rand, m, k, k);
        const rowsLen = Math.ceil((m * rt.kernels.quantizedRowBytes(k)) / 4);
        const packedLen = rt.kernels.packedLengthQ8(n, k);
        const w = bytesOf(rt, wq, 'w');
        const s = regionOf(rt, sw, 'sw');
        const aR = regionOf(rt, a, 'a');
        const out = rt.arena.alloc(m * n, 'out');
        const scales = rt.arena.alloc(m, 'sa');
        const other = rt.arena.alloc(last === 'rows' ? packedLen : rowsLen, 'other');
        const len = last === 'rows' ? rowsLen : packedLen;
        rt.arena.reserve(rt.arena.used + 4 * len + 16);
        rt.arena.alloc((rt.memory.buffer.byteLength - rt.arena.used) / 4 - Math.ceil(len / 4) * 4, 'filler');
        const end = rt.arena.alloc(Math.ceil(len / 4) * 4, last);
        const tail = { ...end, ptr: end.ptr + 4 * (end.length - len), length: len };
        expect(tail.ptr + 4 * len).toBe(rt.memory.buffer.byteLength);
        const packed = rt.kernels.packQ8Into(last === 'packed' ? tail : other, w, s, null, n, k);
        rt.kernels.matmulQ8(out, 0, aR, 0, packed, m, k, n, 0 as Act, { values: last === 'rows' ? tail : other, scales });
        expect(tail.ptr + 4 * len).toBe(rt.memory.buffer.byteLength); // nothing grew the memory since
        expect(rt.arena.view(out)).toEqual(matmulQ8Ref(a, m, k, k, wq, sw, null, n, activationLevels(rt.build)));
        rt.arena.reset(mark);
      }
    }
  });

  it('is exact from the first calls of a fresh module (before the engine optimises it)', async () => {
    const fresh = await createRuntime({ build: BUILD });
    check(fresh, { m: 1, k: 64, n: 64 }, 31);
    check(fresh, { m: 5, k: 33, n: 17 }, 32);
  });

  it('refuses a float32 weight, and quantized rows too small for its input', () => {
    const mark = rt.arena.mark();
    const w = rt.kernels.pack(regionOf(rt, new Float32Array(8 * 4), 'w'), 0, null, 8, 4, 4, 'p');
    const a = rt.arena.alloc(2 * 4, 'a');
    const out = rt.arena.alloc(2 * 8, 'out');
    const rows = { values: rt.arena.alloc(1, 'aq'), scales: rt.arena.alloc(2, 'sa') };
    const q8: Packed = { ...w, dtype: 'q8' };
    expect(() => rt.kernels.matmulQ8(out, 0, a, 0, w, 2, 4, 8, 0 as Act, rows)).toThrow(/matmulQ8: the weight is packed as f32/);
    expect(() => rt.kernels.matmul(out, 0, a, 0, q8, 2, 4, 8, 0 as Act)).toThrow(/matmul: the weight is packed as q8/);
    expect(() => rt.kernels.matmulQ8(out, 0, a, 0, q8, 2, 4, 8, 0 as Act, rows)).toThrow(WasmformerError);
    expect(() => rt.kernels.matmulQ8(out, 0, a, 0, q8, 2, 4, 8, 0 as Act, rows)).toThrow(/quantized rows .* does not fit aq/);
    rt.arena.reset(mark);
  });
});

describe('embedQ8', () => {
  it('is the int8 row times its scale and the embedding scale, plus the position row', () => {
    const rand = rng(77);
    for (const [vocab, d] of [[11, 1], [7, 5], [50, 32], [9, 63]]) {
      const mark = rt.arena.mark();
      const { wq, sw } = weights(rand, vocab, d);
      const table = rt.arena.alloc(Math.ceil((vocab * d + 3) / 4), 'table');
      rt.arena.u8().set(new Uint8Array(wq.buffer), table.ptr);
      const pos = Float32Array.from({ length: 6 * d }, () => rand());
      const ids = [vocab - 1, 0, 3 % vocab, vocab - 1];
      const positions = [0, 5, 2, 1];
      const idsR = rt.arena.alloc(4, 'ids');
      const posR = rt.arena.alloc(4, 'positions');
      rt.arena.writeI32(idsR, 0, ids);
      rt.arena.writeI32(posR, 0, positions);
      const out = rt.arena.alloc(4 * d, 'out');
      rt.kernels.embedQ8(out, idsR, table, regionOf(rt, sw, 'scales'), vocab, regionOf(rt, pos, 'pos'), posR, 4, d, 22.6);
      const want = ids.flatMap((id, i) => Array.from({ length: d }, (_, j) => wq[id * d + j] * Math.fround(sw[id] * 22.6) + pos[positions[i] * d + j]));
      expectClose(rt.arena.view(out), want, 1e-5, 1e-6);
      rt.arena.reset(mark);
    }
  });
});

describe('embedPacked on a q8 matrix', () => {
  it('reads embedQ8\'s rows bit for bit from the packed int8 panels (a tied generator), ragged last panel and K included', () => {
    const rand = rng(505);
    for (const [vocab, d] of [[1, 1], [7, 5], [9, 4], [17, 21], [33, 64]]) {
      const mark = rt.arena.mark();
      const { wq, sw } = weights(rand, vocab, d);
      const table = bytesOf(rt, wq, 'table');
      const scales = regionOf(rt, sw, 'scales');
      const bias = regionOf(rt, Float32Array.from({ length: vocab }, () => rand()), 'bias'); // a generator's: never read as a row
      const packed = rt.kernels.packQ8Into(rt.arena.alloc(rt.kernels.packedLengthQ8(vocab, d), 'packed'), table, scales, bias, vocab, d);
      const n = 5;
      const ids = rt.arena.alloc(n, 'ids');
      rt.arena.writeI32(ids, 0, [vocab - 1, 0, Math.floor(vocab / 2), vocab - 1, Math.floor(rand(0, vocab))]);
      const positions = rt.arena.alloc(n, 'positions');
      rt.arena.writeI32(positions, 0, [0, 3, 1, 2, 3]);
      const pos = regionOf(rt, Float32Array.from({ length: 4 * d }, () => rand()), 'pos');
      for (const withPos of [true, false]) {
        const want = rt.arena.alloc(n * d, 'want');
        const got = rt.arena.alloc(n * d, 'got');
        rt.kernels.embedQ8(want, ids, table, scales, vocab, withPos ? pos : null, withPos ? positions : null, n, d, 22.6);
        rt.kernels.embedPacked(got, ids, packed, withPos ? pos : null, withPos ? positions : null, n, d, 22.6);
        expect(rt.arena.view(got).slice()).toEqual(rt.arena.view(want).slice());
      }
      rt.arena.reset(mark);
    }
  });
});

describe('quantizeMatrix', () => {
  it('keeps every weight within half a step of its row scale, in [-127, 127], the largest at ±127', () => {
    const rand = rng(5);
    const rows = 9;
    const cols = 37;
    const x = Float32Array.from({ length: rows * cols }, (_, i) => (Math.floor(i / cols) === 4 ? 0 : rand() * 10 ** (i % 5)));
    const { values, scales } = quantizeMatrix(x, rows, cols)!;
    for (let i = 0; i < rows; i++) {
      const row = [...values.subarray(i * cols, (i + 1) * cols)];
      if (i === 4) {
        expect(scales[i]).toBe(0);
        expect(row.every((v) => v === 0)).toBe(true);
        continue;
      }
      expect(Math.max(...row.map(Math.abs))).toBe(127);
      for (let j = 0; j < cols; j++) expect(Math.abs(row[j] * scales[i] - x[i * cols + j])).toBeLessThanOrEqual(scales[i] * 0.5 * (1 + 1e-6));
    }
  });
});
