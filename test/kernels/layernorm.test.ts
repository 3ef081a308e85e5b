// The layernorm kernel against a float64 reference: every size in ODD_SIZES and the model's,
// with and without the residual and the stored sum, and every aliasing of out and sum with x or r.
import { beforeAll, describe, expect, it } from 'vitest';
import { WasmformerError } from '../../dist/errors.js';
import type { Runtime } from '../../dist/runtime/index.js';
import { layernorm } from '../reference/layernorm.js';
import { expectClose, ODD_SIZES, randomRegion, rng, runtime } from '../helpers.js';
import { expectGuarded, guarded } from './strided.js';

// Outputs are O(1) · gamma + beta. The kernel's mean and variance are float32 sums over n <= 512
// in eight partial sums (relative error ~1e-6 on rstd), then three roundings per output: the
// largest error measured at (128, 512) and (1024, 128) is 7.6e-7, so 1e-5 leaves a margin of ten.
const TOL = 1e-5;

let rt: Runtime;
beforeAll(async () => {
  rt = await runtime();
});

type Alias = 'none' | 'out=x' | 'out=r' | 'sum=x' | 'sum=r' | 'out=x,sum=r' | 'out=r,sum=x';

interface Case {
  rows: number;
  n: number;
  residual: boolean;
  stored: boolean; // a sum region receives x + r
  alias: Alias;
  offset?: number; // added to every x: a mean far from 0
  atol?: number;
}

function check(c: Case, seed: number): void {
  const rand = rng(seed);
  const mark = rt.arena.mark();
  const size = c.rows * c.n;
  const xData = Float32Array.from({ length: size }, () => rand(-2, 2) + (c.offset ?? 0));
  const rData = Float32Array.from({ length: size }, () => rand(-1, 1));
  const x = guarded(rt, xData, 'x');
  const r = c.residual ? guarded(rt, rData, 'r') : null;
  const [gamma, gammaData] = randomRegion(rt, c.n, () => rand(0.5, 1.5), 'gamma');
  const [beta, betaData] = randomRegion(rt, c.n, () => rand(-0.5, 0.5), 'beta');
  const pick = (name: 'x' | 'r') => (name === 'x' ? x : r!);
  const out = c.alias.includes('out=') ? pick(c.alias.includes('out=x') ? 'x' : 'r') : guarded(rt, new Float32Array(size), 'out');
  const sum = !c.stored ? null : c.alias.includes('sum=') ? pick(c.alias.includes('sum=x') ? 'x' : 'r') : guarded(rt, new Float32Array(size), 'sum');
  const eps = seed % 2 ? 1e-5 : 1e-6;
  rt.kernels.layernorm(out, sum, x, r, gamma, beta, c.rows, c.n, eps);
  const [want, v] = layernorm(xData, c.residual ? rData : null, gammaData, betaData, c.rows, c.n, eps);
  expectClose(rt.arena.view(out), want, c.atol ?? TOL, TOL);
  if (sum) expect(rt.arena.view(sum)).toEqual(v); // exactly fround(x + r)
  for (const t of [x, r, out, sum]) if (t) expectGuarded(rt, t);
  if (!c.alias.includes('=x')) expect(rt.arena.view(x)).toEqual(xData); // inputs untouched
  if (r && !c.alias.includes('=r')) expect(rt.arena.view(r)).toEqual(rData);
  rt.arena.reset(mark);
}

describe('layernorm', () => {
  it('matches torch.nn.LayerNorm at every odd size, without a residual', () => {
    let seed = 1;
    for (const rows of [1, 3, 8, 17]) for (const n of ODD_SIZES) check({ rows, n, residual: false, stored: false, alias: 'none' }, seed++);
  });

  it('fuses the residual add at every odd size, with and without storing the sum', () => {
    let seed = 100;
    for (const rows of [1, 5, 9]) {
      for (const n of ODD_SIZES) {
        check({ rows, n, residual: true, stored: false, alias: 'none' }, seed++);
        check({ rows, n, residual: true, stored: true, alias: 'none' }, seed++);
      }
    }
  });

  it('stores x as the sum when there is no residual', () => {
    let seed = 200;
    for (const n of ODD_SIZES) check({ rows: 3, n, residual: false, stored: true, alias: 'none' }, seed++);
  });

  it('computes v once per row when out and sum alias x or r (in-place use)', () => {
    let seed = 300;
    const aliases: Alias[] = ['out=x', 'out=r', 'sum=x', 'sum=r', 'out=x,sum=r', 'out=r,sum=x'];
    for (const alias of aliases) {
      for (const n of ODD_SIZES) check({ rows: 4, n, residual: true, stored: alias.includes('sum'), alias }, seed++);
    }
    for (const n of ODD_SIZES) check({ rows: 4, n, residual: false, stored: false, alias: 'out=x' }, seed++);
    for (const n of ODD_SIZES) check({ rows: 4, n, residual: false, stored: true, alias: 'sum=x' }, seed++);
  });

  it('handles the Transformer shapes: d_model 512 and 6, up to 128 positions', () => {
    check({ rows: 128, n: 512, residual: true, stored: false, alias: 'out=x' }, 400);
    check({ rows: 1, n: 512, residual: true, stored: true, alias: 'sum=x' }, 401);
    check({ rows: 1024, n: 128, residual: true, stored: false, alias: 'none' }, 402);
    check({ rows: 128, n: 6, residual: true, stored: false, alias: 'none' }, 403);
  });

  it('keeps its accuracy when the mean is far larger than the spread', () => {
    // A float32 mean near 1000 is itself rounded by up to 3.1e-5 (half a step), which reaches
    // the outputs times rstd (~0.8) and gamma (<= 1.5): 4e-5 more. E[v²] - mean² in float32
    // would be off by ~0.06 in a variance of ~1.7, a thousand times this bound.
    let seed = 500;
    for (const n of [7, 64, 512]) check({ rows: 3, n, residual: true, stored: false, alias: 'none', offset: 1000, atol: TOL + 4e-5 }, seed++);
  });

  it('gives beta for constant rows (zero variance), without NaN', () => {
    const n = 9;
    const x = rt.arena.alloc(n, 'x');
    rt.arena.view(x).fill(3.5);
    const gamma = rt.arena.alloc(n, 'gamma');
    const beta = rt.arena.alloc(n, 'beta');
    rt.arena.view(gamma).fill(2);
    rt.arena.view(beta).set([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const out = rt.arena.alloc(n, 'out');
    rt.kernels.layernorm(out, null, x, null, gamma, beta, 1, n, 1e-5);
    expect(Array.from(rt.arena.view(out))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('is rejected by the wrapper when a region is too small', () => {
    const big = rt.arena.alloc(12, 'big');
    const small = rt.arena.alloc(11, 'small');
    const g = rt.arena.alloc(4, 'gamma');
    const g3 = rt.arena.alloc(3, 'gamma3');
    expect(() => rt.kernels.layernorm(big, null, big, big, g, g, 3, 4, 1e-5)).not.toThrow();
    expect(() => rt.kernels.layernorm(small, null, big, null, g, g, 3, 4, 1e-5)).toThrow(/out .*does not fit small/);
    expect(() => rt.kernels.layernorm(big, small, big, null, g, g, 3, 4, 1e-5)).toThrow(/sum/);
    expect(() => rt.kernels.layernorm(big, null, small, null, g, g, 3, 4, 1e-5)).toThrow(/x /);
    expect(() => rt.kernels.layernorm(big, null, big, small, g, g, 3, 4, 1e-5)).toThrow(/r /);
    expect(() => rt.kernels.layernorm(big, null, big, null, g3, g, 3, 4, 1e-5)).toThrow(/gamma/);
    expect(() => rt.kernels.layernorm(big, null, big, null, g, g3, 3, 4, 1e-5)).toThrow(/beta/);
    expect(() => rt.kernels.layernorm(big, null, big, null, g, g, 3, 0, 1e-5)).toThrow(WasmformerError);
  });
});
