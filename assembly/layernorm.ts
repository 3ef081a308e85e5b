// Row LayerNorm fused with the residual add, as torch.nn.LayerNorm (biased variance). Three passes
// over a row that stays in L1: v = x + r stored with its sum, then the sum of squares of
// v - mean, then the normalized output. Accuracy when |mean| >> std: the first sum runs over
// v - v[0] (small partial sums, so the mean keeps its low bits) and the variance is a second
// pass over v - mean, not E[v²] - mean². The two reductions take eight floats into two
// accumulators, to overlap the add latencies.
import { hsum, madd } from './simd';

/**
 * out[rows, n] = (v - mean) / sqrt(var + eps) · gamma + beta with v = x + r (r 0: v = x);
 * when sum != 0 it also receives v. out and sum may alias x or r.
 */
export function layernorm(out: usize, sum: usize, x: usize, r: usize, gamma: usize, beta: usize, rows: i32, n: i32, eps: f32): void {
  const rowBytes = <usize>n << 2;
  for (let i = 0; i < rows; i++) {
    const at = <usize>i * rowBytes;
    // v is computed once and kept in sum, else in out (its final destination, so free to use),
    // else it is x itself. Every pass reads and writes index j together: any aliasing of out or
    // sum with x or r only overwrites what that index has already consumed.
    let v = x + at;
    const pivot = r ? load<f32>(x + at) + load<f32>(r + at) : load<f32>(x + at);
    let shifted: f32;
    if (r) {
      v = (sum ? sum : out) + at;
      shifted = accumulate(v, x + at, r + at, n, pivot, true, true);
    } else if (sum) {
      v = sum + at;
      shifted = accumulate(v, x + at, 0, n, pivot, false, true);
    } else {
      shifted = accumulate(0, v, 0, n, pivot, false, false);
    }
    normalizeRow(out + at, v, gamma, beta, n, pivot + shifted / <f32>n, eps);
  }
}

/** a + b (or a when !added), four lanes at byte offset o. */
// @ts-ignore: decorator
@inline function v4(a: usize, b: usize, o: usize, added: bool): v128 {
  return added ? f32x4.add(v128.load(a + o), v128.load(b + o)) : v128.load(a + o);
}

/** Σ (v[j] - pivot) over n floats with v = a + b (or a); stores v in dst[j] when `stored`. */
// @ts-ignore: decorator
@inline function accumulate(dst: usize, a: usize, b: usize, n: i32, pivot: f32, added: bool, stored: bool): f32 {
  const p = f32x4.splat(pivot);
  let acc0 = f32x4.splat(0);
  let acc1 = acc0;
  let j = 0;
  for (; j + 8 <= n; j += 8) {
    const o = <usize>j << 2;
    const v0 = v4(a, b, o, added);
    const v1 = v4(a, b, o + 16, added);
    if (stored) {
      v128.store(dst + o, v0);
      v128.store(dst + o, v1, 16);
    }
    acc0 = f32x4.add(acc0, f32x4.sub(v0, p));
    acc1 = f32x4.add(acc1, f32x4.sub(v1, p));
  }
  if (j + 4 <= n) {
    const o = <usize>j << 2;
    const v = v4(a, b, o, added);
    if (stored) v128.store(dst + o, v);
    acc0 = f32x4.add(acc0, f32x4.sub(v, p));
    j += 4;
  }
  let total = hsum(f32x4.add(acc0, acc1));
  for (; j < n; j++) {
    const o = <usize>j << 2;
    const v = added ? load<f32>(a + o) + load<f32>(b + o) : load<f32>(a + o);
    if (stored) store<f32>(dst + o, v);
    total += v - pivot;
  }
  return total;
}

/** out[j] = (v[j] - mean) · rstd · gamma[j] + beta[j] over n floats, rstd from v's variance. */
// @ts-ignore: decorator
@inline function normalizeRow(out: usize, v: usize, gamma: usize, beta: usize, n: i32, mean: f32, eps: f32): void {
  const rstd: f32 = 1.0 / Mathf.sqrt(squares(v, n, mean) / <f32>n + eps);
  const m = f32x4.splat(mean);
  const s = f32x4.splat(rstd);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const o = <usize>j << 2;
    const t = f32x4.mul(f32x4.sub(v128.load(v + o), m), s);
    v128.store(out + o, madd(t, v128.load(gamma + o), v128.load(beta + o)));
  }
  for (; j < n; j++) {
    const o = <usize>j << 2;
    store<f32>(out + o, (load<f32>(v + o) - mean) * rstd * load<f32>(gamma + o) + load<f32>(beta + o));
  }
}

/** Σ (v[j] - mean)² over n floats. */
// @ts-ignore: decorator
@inline function squares(v: usize, n: i32, mean: f32): f32 {
  const m = f32x4.splat(mean);
  let acc0 = f32x4.splat(0);
  let acc1 = acc0;
  let j = 0;
  for (; j + 8 <= n; j += 8) {
    const o = <usize>j << 2;
    const d0 = f32x4.sub(v128.load(v + o), m);
    const d1 = f32x4.sub(v128.load(v + o, 16), m);
    acc0 = madd(d0, d0, acc0);
    acc1 = madd(d1, d1, acc1);
  }
  if (j + 4 <= n) {
    const d = f32x4.sub(v128.load(v + (<usize>j << 2)), m);
    acc0 = madd(d, d, acc0);
    j += 4;
  }
  let total = hsum(f32x4.add(acc0, acc1));
  for (; j < n; j++) {
    const d = load<f32>(v + (<usize>j << 2)) - mean;
    total += d * d;
  }
  return total;
}
