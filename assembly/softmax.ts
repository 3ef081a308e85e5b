// Row softmax with a scale, a causal mask and a key-padding mask, in place. Three passes over a
// row that stays in L1: the max, then e^(t - max) stored with its sum, then the division.
// The reductions keep several independent accumulators so that their latencies overlap.
import { expNonPositive4 } from './math';
import { hmax, hsum, madd } from './simd';

/** In place over `rows` rows of x (stride ld): softmax(scale · x + masks); masked keys get 0. */
export function softmax(x: usize, rows: i32, cols: i32, ld: i32, scale: f32, causalOffset: i32, keyMask: usize): void {
  for (let i = 0; i < rows; i++) {
    softmaxRow(x + ((<usize>i * <usize>ld) << 2), cols, visibleKeys(i, cols, causalOffset), scale, keyMask);
  }
}

/**
 * In place over `rows` rows of x (stride ld): log_softmax, x - max - log(sum of e^(x - max)), as
 * beam search takes a step's logits. A row of -Infinity stays so.
 */
export function logSoftmax(x: usize, rows: i32, cols: i32, ld: i32): void {
  for (let i = 0; i < rows; i++) {
    const row = x + ((<usize>i * <usize>ld) << 2);
    const top = rowMax(row, cols, 1, 0, false, false);
    if (top == -Infinity) continue;
    const logSum = Mathf.log(rowExp(row, cols, 1, -top, 0, false, false, false));
    rowShift(row, cols, -top, -logSum);
  }
}

/** How many leading keys query row i sees: key j is causally masked when j > i + causalOffset. */
// @ts-ignore: decorator
@inline export function visibleKeys(i: i32, cols: i32, causalOffset: i32): i32 {
  return causalOffset < 0 || causalOffset >= cols - 1 - i ? cols : i + causalOffset + 1;
}

/**
 * One row in place: row[j] = softmax over j < visible of scale · row[j] + keyMask[j] (keyMask 0:
 * none; it holds 0 or -Infinity), and row[j] = 0 for j >= visible. A row whose every key is
 * masked becomes zeros.
 */
// @ts-ignore: decorator
@inline export function softmaxRow(row: usize, cols: i32, visible: i32, scale: f32, keyMask: usize): void {
  // Literal flags let the optimizer drop the mask loads and the scaling (scale 1: attention,
  // which scales its scores) from the loops of each variant.
  if (keyMask) {
    if (scale == 1) normalize(row, cols, visible, 1, keyMask, true, false);
    else normalize(row, cols, visible, scale, keyMask, true, true);
  } else {
    if (scale == 1) normalize(row, cols, visible, 1, 0, false, false);
    else normalize(row, cols, visible, scale, 0, false, true);
  }
}

/** softmaxRow for one variant: `masked` and `scaled` are literals at every call. */
// @ts-ignore: decorator
@inline function normalize(row: usize, cols: i32, visible: i32, scale: f32, mask: usize, masked: bool, scaled: bool): void {
  const top = rowMax(row, visible, scale, mask, masked, scaled);
  if (top == -Infinity) {
    fill(row, cols, 0); // every key masked
    return;
  }
  const sum = rowExp(row, visible, scale, -top, mask, masked, scaled, true);
  rowScale(row, visible, 1 / sum);
  fill(row + (<usize>visible << 2), cols - visible, 0);
}

/** scale · x + mask (mask: -Infinity or 0), four lanes at byte offset o. */
// @ts-ignore: decorator
@inline function logits4(row: usize, o: usize, s: v128, mask: usize, masked: bool, scaled: bool): v128 {
  const x = v128.load(row + o);
  if (!masked) return scaled ? f32x4.mul(x, s) : x;
  return scaled ? madd(x, s, v128.load(mask + o)) : f32x4.add(x, v128.load(mask + o));
}

/** scale · x + mask - top, four lanes at byte offset o: the argument of exp. */
// @ts-ignore: decorator
@inline function shifted4(row: usize, o: usize, s: v128, negTop: v128, mask: usize, masked: bool, scaled: bool): v128 {
  const x = v128.load(row + o);
  const bias = masked ? f32x4.add(v128.load(mask + o), negTop) : negTop;
  return scaled ? madd(x, s, bias) : f32x4.add(x, bias);
}

/** scale · x + mask of one float at byte offset o. */
// @ts-ignore: decorator
@inline function logit1(row: usize, o: usize, scale: f32, mask: usize, masked: bool, scaled: bool): f32 {
  const x = load<f32>(row + o);
  const t = scaled ? x * scale : x;
  return masked ? t + load<f32>(mask + o) : t;
}

/** The largest logit of row[0, n): -Infinity when n = 0 or every key is masked. */
// @ts-ignore: decorator
@inline function rowMax(row: usize, n: i32, scale: f32, mask: usize, masked: bool, scaled: bool): f32 {
  // Four accumulators: a max waits on the previous one (latency 3-4 cycles), so one chain
  // would run at a quarter of the load rate.
  const s = f32x4.splat(scale);
  let acc0 = f32x4.splat(-Infinity);
  let acc1 = acc0;
  let acc2 = acc0;
  let acc3 = acc0;
  let j = 0;
  for (; j + 16 <= n; j += 16) {
    const o = <usize>j << 2;
    acc0 = f32x4.pmax(acc0, logits4(row, o, s, mask, masked, scaled));
    acc1 = f32x4.pmax(acc1, logits4(row, o + 16, s, mask, masked, scaled));
    acc2 = f32x4.pmax(acc2, logits4(row, o + 32, s, mask, masked, scaled));
    acc3 = f32x4.pmax(acc3, logits4(row, o + 48, s, mask, masked, scaled));
  }
  for (; j + 4 <= n; j += 4) acc0 = f32x4.pmax(acc0, logits4(row, <usize>j << 2, s, mask, masked, scaled));
  let top = hmax(f32x4.pmax(f32x4.pmax(acc0, acc1), f32x4.pmax(acc2, acc3)));
  for (; j < n; j++) top = max(top, logit1(row, <usize>j << 2, scale, mask, masked, scaled));
  return top;
}

/** The sum of e^(logit_j - top) over j < n (exactly 0 where masked, or below 2^-126), stored as row[j] when `keep`. */
// @ts-ignore: decorator
@inline function rowExp(row: usize, n: i32, scale: f32, negTop: f32, mask: usize, masked: bool, scaled: bool, keep: bool): f32 {
  const s = f32x4.splat(scale);
  const shift = f32x4.splat(negTop);
  let sum0 = f32x4.splat(0);
  let sum1 = sum0;
  let j = 0;
  for (; j + 8 <= n; j += 8) {
    const o = <usize>j << 2;
    const e0 = expNonPositive4(shifted4(row, o, s, shift, mask, masked, scaled));
    const e1 = expNonPositive4(shifted4(row, o + 16, s, shift, mask, masked, scaled));
    if (keep) {
      v128.store(row + o, e0);
      v128.store(row + o, e1, 16);
    }
    sum0 = f32x4.add(sum0, e0);
    sum1 = f32x4.add(sum1, e1);
  }
  if (j + 4 <= n) {
    const o = <usize>j << 2;
    const e = expNonPositive4(shifted4(row, o, s, shift, mask, masked, scaled));
    if (keep) v128.store(row + o, e);
    sum0 = f32x4.add(sum0, e);
    j += 4;
  }
  let sum = hsum(f32x4.add(sum0, sum1));
  for (; j < n; j++) {
    const o = <usize>j << 2;
    const e = f32x4.extract_lane(expNonPositive4(f32x4.splat(logit1(row, o, scale, mask, masked, scaled) + negTop)), 0);
    if (keep) store<f32>(row + o, e);
    sum += e;
  }
  return sum;
}

/** row[j] *= k over j < n. */
// @ts-ignore: decorator
@inline function rowScale(row: usize, n: i32, k: f32): void {
  const kv = f32x4.splat(k);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const p = row + (<usize>j << 2);
    v128.store(p, f32x4.mul(v128.load(p), kv));
  }
  for (; j < n; j++) {
    const p = row + (<usize>j << 2);
    store<f32>(p, load<f32>(p) * k);
  }
}

/** row[j] = (row[j] + a) + b over j < n. */
// @ts-ignore: decorator
@inline function rowShift(row: usize, n: i32, a: f32, b: f32): void {
  const av = f32x4.splat(a);
  const bv = f32x4.splat(b);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const p = row + (<usize>j << 2);
    v128.store(p, f32x4.add(f32x4.add(v128.load(p), av), bv));
  }
  for (; j < n; j++) {
    const p = row + (<usize>j << 2);
    store<f32>(p, load<f32>(p) + a + b);
  }
}

/** row[j] = v over j < n (n <= 0: nothing). */
// @ts-ignore: decorator
@inline function fill(row: usize, n: i32, v: f32): void {
  const vv = f32x4.splat(v);
  let j = 0;
  for (; j + 4 <= n; j += 4) v128.store(row + (<usize>j << 2), vv);
  for (; j < n; j++) store<f32>(row + (<usize>j << 2), v);
}
