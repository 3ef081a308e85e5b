// The kernels a Team splits across threads (matmul, matmulQ8, attention, attendRows) give the
// one-thread result bit for bit at odd sizes, ragged column groups, strided outputs and rows
// of different key counts, and write nothing outside their outputs. The one-thread kernels are
// checked against scalar references in the other files of this folder.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, quantizeMatrix, type Region, type Runtime } from '../../dist/runtime/index.js';
import { BUILD, expectSameBits, rng } from '../helpers.js';

const GUARD = 1234.5;
/** Two runtimes fed the same inputs: one thread, and three (two helpers on this 2-core machine). */
let runtimes: Runtime[];

beforeAll(async () => {
  runtimes = [await createRuntime({ build: BUILD }), await createRuntime({ build: BUILD, threads: 3 })];
  expect(runtimes.map((rt) => rt.team.threads)).toEqual([1, 3]);
});
afterAll(async () => {
  await Promise.all(runtimes.map((rt) => rt.team.dispose()));
});

/** The same data as a region of every runtime, the same call on each, and each runtime's `out` after it. */
function onEach(inputs: Record<string, Float32Array | Int32Array>, outLength: number, call: (rt: Runtime, r: Record<string, Region>, out: Region) => void): Float32Array[] {
  return runtimes.map((rt) => {
    const mark = rt.arena.mark();
    const regions: Record<string, Region> = {};
    for (const [name, data] of Object.entries(inputs)) {
      regions[name] = rt.arena.alloc(data.length, name);
      rt.arena.u8().set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), regions[name].ptr);
    }
    const out = rt.arena.alloc(outLength, 'out');
    rt.arena.view(out).fill(GUARD);
    call(rt, regions, out);
    const values = rt.arena.view(out).slice();
    rt.arena.reset(mark);
    return values;
  });
}

function floats(n: number, seed: number): Float32Array {
  const rand = rng(seed);
  return Float32Array.from({ length: n }, () => rand());
}

/** Both runtimes' outputs are the same bits, and not all of them are the guard (the kernel ran). */
function expectSame([one, many]: Float32Array[], what: string): void {
  expectSameBits(many, one, what);
  expect(one.some((v) => v !== GUARD), `${what}: the kernel wrote nothing`).toBe(true);
}

// Sizes past the Team's threshold for splitting (thousands of multiply-adds per chunk), with
// column counts that end in a ragged group of 32 and a ragged panel of 8.
const MATMULS = [
  { m: 1, k: 512, n: 1000 },
  { m: 3, k: 67, n: 1003 },
  { m: 37, k: 300, n: 517 },
  { m: 64, k: 129, n: 96 },
  { m: 5, k: 1001, n: 33 },
];

describe('threads give the one-thread bits', () => {
  it('matmul at odd sizes, strided outputs, every activation', () => {
    for (const [i, { m, k, n }] of MATMULS.entries()) {
      for (const act of [0, 1, 2, 3]) {
        const ldo = n + (i % 3) * 5;
        const lda = k + (i % 2);
        const got = onEach({ w: floats(n * k, i), bias: floats(n, i + 10), a: floats((m - 1) * lda + k, i + 20) }, 2 + (m - 1) * ldo + n + 2, (rt, r, out) => {
          const packed = rt.kernels.pack(r.w, 0, r.bias, n, k, k, 'packed');
          rt.kernels.matmul(out, 2, r.a, 0, packed, m, lda, ldo, act);
        });
        expectSame(got, `matmul m=${m} k=${k} n=${n} act=${act}`);
      }
    }
  });

  it('matmulQ8 at odd sizes and strided outputs', () => {
    for (const [i, { m, k, n }] of MATMULS.entries()) {
      const ldo = n + (i % 3) * 5;
      const { values, scales } = quantizeMatrix(floats(n * k, i), n, k)!;
      const bytes = new Float32Array(Math.ceil((n * k) / 4));
      new Int8Array(bytes.buffer).set(values);
      const got = onEach({ w: bytes, scales, bias: floats(n, i + 10), a: floats(m * k, i + 20) }, (m - 1) * ldo + n + 3, (rt, r, out) => {
        const packed = rt.kernels.packQ8Into(rt.arena.alloc(rt.kernels.packedLengthQ8(n, k), 'packed'), r.w, r.scales, r.bias, n, k);
        const rows = { values: rt.arena.alloc(Math.ceil((m * rt.kernels.quantizedRowBytes(k)) / 4), 'aq'), scales: rt.arena.alloc(m, 'sa') };
        rt.kernels.matmulQ8(out, 3, r.a, 0, packed, m, k, ldo, 2, rows);
      });
      expectSame(got, `matmulQ8 m=${m} k=${k} n=${n}`);
    }
  });

  it('attention by heads, causal and padded, with every head\'s probabilities', () => {
    for (const [i, { sq, sk, nhead, dk, causal }] of [
      { sq: 37, sk: 37, nhead: 8, dk: 64, causal: -1 },
      { sq: 33, sk: 41, nhead: 6, dk: 17, causal: 8 },
      { sq: 64, sk: 64, nhead: 3, dk: 31, causal: 0 },
    ].entries()) {
      const width = nhead * dk;
      const mask = Float32Array.from({ length: sk }, (_, j) => (j % 7 === 3 ? -Infinity : 0));
      const probs = nhead * sq * sk;
      const inputs = { q: floats(sq * width, i), k: floats(sk * width, i + 1), v: floats(sk * width, i + 2), mask };
      const got = onEach(inputs, probs + sq * width, (rt, r, out) => {
        rt.kernels.attention(out, probs, r.q, 0, r.k, 0, r.v, 0, out, sq, sk, nhead, dk, width, width, width, width, 0.125, causal, r.mask, sq * sk);
      });
      expectSame(got, `attention sq=${sq} sk=${sk} nhead=${nhead} dk=${dk}`);
    }
  });

  it('attendRows by heads, rows attending to different numbers of keys', () => {
    // Nine queries over a block of 300 key/value rows; row r sees counts[r] of them, in an order
    // of its own. The heads' probabilities share one scratch, which threads must not overlap in
    // (repeated, so that a race would show).
    const nhead = 8;
    const dk = 64;
    const width = nhead * dk;
    const rows = 9;
    const stride = 300;
    const counts = Int32Array.of(300, 1, 257, 13, 64, 299, 2, 150, 200);
    const rand = rng(9);
    const block = floats(stride * 2 * width, 7); // row j: key at j·2·width, value after it
    const q = floats(rows * width, 8);
    const rowsOfKeys = Int32Array.from({ length: rows * stride }, () => Math.floor(rand(0, stride)) * 2 * width);
    const probs = nhead * stride; // one scratch for every row
    const got = onEach({ block, q, counts }, rows * width, (rt, r, out) => {
      // The tables hold absolute element offsets: the block's own, plus the row's.
      const tables = rt.arena.alloc(rows * stride, 'tables');
      rt.arena.writeI32(tables, 0, rowsOfKeys.map((at) => (r.block.ptr >>> 2) + at));
      const scratch = rt.arena.alloc(probs, 'probs');
      const first = rt.arena.alloc(rows * width, 'first');
      for (let rep = 0; rep < 20; rep++) {
        rt.kernels.attendRows(out, r.q, scratch, rows, nhead, dk, width, width, tables, stride, r.counts, 0, width, 0.17, 0);
        if (rep === 0) rt.arena.view(first).set(rt.arena.view(out).subarray(0, rows * width));
        else expectSameBits(rt.arena.view(out), rt.arena.view(first), `attendRows, call ${rep + 1}`);
      }
    });
    expectSame(got, 'attendRows');
  });
});
