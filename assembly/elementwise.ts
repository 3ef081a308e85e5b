// Elementwise kernels over flat float arrays: four lanes at a time, then a scalar tail that
// runs the same SIMD function on one lane where there is one (gelu, exp), so both paths agree.
import { exp4, gelu4, silu4 } from './math';
import { storeRagged } from './matmul';
import { hmax, madd } from './simd';

/** out[n] = GELU(x[n]), exact erf form; out may be x. */
export function gelu(out: usize, x: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, gelu4(v128.load(x + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, f32x4.extract_lane(gelu4(f32x4.splat(load<f32>(x + o))), 0));
  }
}

/** out[n] = SiLU(x[n]) = x / (1 + e^-x); out may be x. */
export function silu(out: usize, x: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, silu4(v128.load(x + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, f32x4.extract_lane(silu4(f32x4.splat(load<f32>(x + o))), 0));
  }
}

/** out[n] = max(x[n], 0) (NaN and -0 pass through); out may be x. */
export function relu(out: usize, x: usize, n: i32): void {
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.pmax(v128.load(x + o), zero)); // x < 0 ? 0 : x, one instruction
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const v = load<f32>(x + o);
    store<f32>(out + o, v < 0 ? 0 : v);
  }
}

/** out[n] = a[n] + b[n]; out may be a or b. */
export function add(out: usize, a: usize, b: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.add(v128.load(a + o), v128.load(b + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, load<f32>(a + o) + load<f32>(b + o));
  }
}

/** out[n] = e^x[n]; out may be x. */
export function vexp(out: usize, x: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, exp4(v128.load(x + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, f32x4.extract_lane(exp4(f32x4.splat(load<f32>(x + o))), 0));
  }
}

/**
 * out[n, dModel] = table[ids[i], :] · scale + pos[positions[i], :] (pos 0: no positions); ids
 * and positions int32, in range: each row at its own position (a step's rows may be at different ones).
 */
export function embed(out: usize, table: usize, ids: usize, pos: usize, positions: usize, n: i32, dModel: i32, scale: f32): void {
  const rowBytes = <usize>dModel << 2;
  for (let i = 0; i < n; i++) {
    const src = table + <usize>load<i32>(ids + (<usize>i << 2)) * rowBytes;
    const dst = out + <usize>i * rowBytes;
    if (pos) scaleAdd(dst, src, pos + <usize>load<i32>(positions + (<usize>i << 2)) * rowBytes, dModel, scale);
    else scaleAdd(dst, src, 0, dModel, scale);
  }
}

/**
 * embed with an int8 table [vocab, dModel] (row stride dModel bytes) and its row scales [vocab]:
 * out[i] = f32(table[ids[i]]) · (scales[ids[i]] · scale) + pos[positions[i]].
 */
export function embedQ8(out: usize, table: usize, scales: usize, ids: usize, pos: usize, positions: usize, n: i32, dModel: i32, scale: f32): void {
  const rowBytes = <usize>dModel << 2;
  for (let i = 0; i < n; i++) {
    const id = <usize>load<i32>(ids + (<usize>i << 2));
    const src = table + id * <usize>dModel;
    const s = f32x4.splat(load<f32>(scales + (id << 2)) * scale);
    const add = pos ? pos + <usize>load<i32>(positions + (<usize>i << 2)) * rowBytes : 0;
    const dst = out + <usize>i * rowBytes;
    let j = 0;
    for (; j + 4 <= dModel; j += 4) {
      const v = f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(v128.load32_zero(src + j))));
      v128.store(dst + (<usize>j << 2), madd(v, s, add ? v128.load(add + (<usize>j << 2)) : f32x4.splat(0)));
    }
    // The tail one by one, reading nothing past the row or the position row (as scaleAdd does).
    const s1 = f32x4.extract_lane(s, 0);
    for (; j < dModel; j++) {
      const o = <usize>j << 2;
      store<f32>(dst + o, <f32>load<i8>(src + j) * s1 + (add ? load<f32>(add + o) : 0));
    }
  }
}

/** dst[n] = src[n] · scale + add[n], or src[n] · scale when add is 0. */
// @ts-ignore: decorator
@inline function scaleAdd(dst: usize, src: usize, add: usize, n: i32, scale: f32): void {
  const s = f32x4.splat(scale);
  const zero = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const o = <usize>j << 2;
    v128.store(dst + o, madd(v128.load(src + o), s, add ? v128.load(add + o) : zero));
  }
  for (; j < n; j++) {
    const o = <usize>j << 2;
    store<f32>(dst + o, load<f32>(src + o) * scale + (add ? load<f32>(add + o) : 0));
  }
}

/** The index of the largest of x[n]: the lowest index wins a tie, NaN never wins (all NaN: 0). */
export function argmax(x: usize, n: i32): i32 {
  const best = largest(x, n);
  const want = f32x4.splat(best);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    if (v128.any_true(f32x4.eq(v128.load(x + (<usize>i << 2)), want))) break;
  }
  for (; i < n; i++) {
    if (load<f32>(x + (<usize>i << 2)) == best) return i;
  }
  return 0;
}

/** The largest non-NaN value of x[n], -Infinity when there is none. */
// @ts-ignore: decorator
@inline function largest(x: usize, n: i32): f32 {
  // pmax(acc, v) = acc < v ? v : acc keeps acc when v is NaN, so NaN never enters acc.
  let acc = f32x4.splat(-Infinity);
  let i = 0;
  for (; i + 4 <= n; i += 4) acc = f32x4.pmax(acc, v128.load(x + (<usize>i << 2)));
  let best = hmax(acc);
  for (; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    if (v > best) best = v;
  }
  return best;
}
