// Scaled dot-product attention over strided slices: scores q k^T, the masked softmax, then the
// probabilities times v, one query row at a time so that the row of probabilities stays in L1
// between the three steps. The row-level helpers serve the qkT and pv kernels too.
import { hsum, madd } from './simd';
import { softmaxRow, visibleKeys } from './softmax';

/** out[i*ldo + j] = scale · dot(q row i, k row j) over dk, for i < sq, j < sk. */
export function qkT(out: usize, q: usize, k: usize, sq: i32, sk: i32, dk: i32, ldq: i32, ldk: i32, ldo: i32, scale: f32): void {
  for (let i = 0; i < sq; i++) {
    scoresRow(out + ((<usize>i * <usize>ldo) << 2), q + ((<usize>i * <usize>ldq) << 2), k, sk, dk, ldk, scale);
  }
}

/** out[i*ldo + d] = Σ_j p[i*ldp + j] · v[j*ldv + d], for i < sq, d < dv. */
export function pv(out: usize, p: usize, v: usize, sq: i32, sk: i32, dv: i32, ldp: i32, ldv: i32, ldo: i32): void {
  for (let i = 0; i < sq; i++) {
    weightedRow(out + ((<usize>i * <usize>ldo) << 2), p + ((<usize>i * <usize>ldp) << 2), v, sk, dv, ldv);
  }
}

/**
 * Multi-head attention, all heads in one call: head h reads columns [h·dk, (h+1)·dk) of q, k, v
 * and writes them in out; its probabilities softmax(scale · q k^T + masks) go to probs +
 * h·headStride ([sq, sk], row stride sk; headStride 0: one scratch for every head). Query i
 * sees key j when j <= i + causalOffset (causalOffset < 0: every key) and keyMask[j] is 0.
 */
export function attention(
  out: usize, q: usize, k: usize, v: usize, probs: usize, sq: i32, sk: i32, nhead: i32, dk: i32,
  ldq: i32, ldk: i32, ldv: i32, ldo: i32, scale: f32, causalOffset: i32, keyMask: usize, headStride: i32,
): void {
  for (let h = 0; h < nhead; h++) {
    const column = (<usize>h * <usize>dk) << 2;
    const headProbs = probs + ((<usize>h * <usize>headStride) << 2);
    for (let i = 0; i < sq; i++) {
      const row = headProbs + ((<usize>i * <usize>sk) << 2);
      // Keys past `visible` are causally masked: their scores are never computed, softmaxRow
      // zeroes them, and the weighted sum stops before them.
      const visible = visibleKeys(i, sk, causalOffset);
      scoresRow(row, q + ((<usize>i * <usize>ldq) << 2) + column, k + column, visible, dk, ldk, scale);
      softmaxRow(row, sk, visible, 1, keyMask);
      weightedRow(out + ((<usize>i * <usize>ldo) << 2) + column, row, v + column, visible, dk, ldv);
    }
  }
}

/**
 * Multi-head attention of `rows` single queries, each over its own keys, found through a table:
 * query r (q + r·ldq) attends to counts[r] keys whose rows start at element offsets
 * tables[r·tableStride + j] from base, the key at + kAdd and the value at + vAdd, all visible
 * (a decoding's positions so far, or a source's unpadded positions). Head h uses columns
 * [h·dk, (h+1)·dk); its probabilities go to probs + r·probsStride + h·counts[r] (probsStride 0:
 * one scratch for every row). No key is copied: beams that share a past share its rows.
 */
export function attendRows(
  out: usize, q: usize, base: usize, probs: usize, rows: i32, nhead: i32, dk: i32, ldq: i32, ldo: i32,
  tables: usize, tableStride: i32, counts: usize, kAdd: i32, vAdd: i32, scale: f32, probsStride: i32,
): void {
  for (let r = 0; r < rows; r++) {
    const table = tables + ((<usize>r * <usize>tableStride) << 2);
    const sk = load<i32>(counts + (<usize>r << 2));
    const qRow = q + ((<usize>r * <usize>ldq) << 2);
    const outRow = out + ((<usize>r * <usize>ldo) << 2);
    const rowProbs = probs + ((<usize>r * <usize>probsStride) << 2);
    for (let h = 0; h < nhead; h++) {
      const column = <usize>h * <usize>dk;
      const p = rowProbs + ((<usize>h * <usize>sk) << 2);
      scoresGathered(p, qRow + (column << 2), base, table, sk, dk, <usize>kAdd + column, scale);
      softmaxRow(p, sk, sk, 1, 0);
      weightedGathered(outRow + (column << 2), p, base, table, sk, dk, <usize>vAdd + column);
    }
  }
}

/** The address of key j through a table: base + (table[j] + add) elements. */
// @ts-ignore: decorator
@inline function gathered(base: usize, table: usize, j: i32, add: usize): usize {
  return base + ((<usize>load<i32>(table + (<usize>j << 2)) + add) << 2);
}

/** scoresRow over keys found through a table (the same grouping by four, so the same sums). */
// @ts-ignore: decorator
@inline function scoresGathered(out: usize, q: usize, base: usize, table: usize, sk: i32, dk: i32, add: usize, scale: f32): void {
  const s = f32x4.splat(scale);
  let j = 0;
  for (; j + 4 <= sk; j += 4) {
    const k0 = gathered(base, table, j, add);
    const dots = dot4Rows(q, k0, gathered(base, table, j + 1, add), gathered(base, table, j + 2, add), gathered(base, table, j + 3, add), dk);
    v128.store(out + (<usize>j << 2), f32x4.mul(dots, s));
  }
  for (; j < sk; j++) store<f32>(out + (<usize>j << 2), dot1(q, gathered(base, table, j, add), dk) * scale);
}

/** weightedRow over value rows found through a table. */
// @ts-ignore: decorator
@inline function weightedGathered(out: usize, p: usize, base: usize, table: usize, sk: i32, dv: i32, add: usize): void {
  let d = 0;
  for (; d + 16 <= dv; d += 16) {
    let a0 = f32x4.splat(0);
    let a1 = a0;
    let a2 = a0;
    let a3 = a0;
    for (let j = 0; j < sk; j++) {
      const w = v128.load32_splat(p + (<usize>j << 2));
      const row = gathered(base, table, j, add) + (<usize>d << 2);
      a0 = madd(w, v128.load(row), a0);
      a1 = madd(w, v128.load(row, 16), a1);
      a2 = madd(w, v128.load(row, 32), a2);
      a3 = madd(w, v128.load(row, 48), a3);
    }
    const o = out + (<usize>d << 2);
    v128.store(o, a0);
    v128.store(o, a1, 16);
    v128.store(o, a2, 32);
    v128.store(o, a3, 48);
  }
  for (; d + 4 <= dv; d += 4) {
    let acc = f32x4.splat(0);
    for (let j = 0; j < sk; j++) {
      acc = madd(v128.load32_splat(p + (<usize>j << 2)), v128.load(gathered(base, table, j, add) + (<usize>d << 2)), acc);
    }
    v128.store(out + (<usize>d << 2), acc);
  }
  for (; d < dv; d++) {
    let acc: f32 = 0;
    for (let j = 0; j < sk; j++) acc += load<f32>(p + (<usize>j << 2)) * load<f32>(gathered(base, table, j, add) + (<usize>d << 2));
    store<f32>(out + (<usize>d << 2), acc);
  }
}

/** out[j] = scale · dot(q, k row j) over dk for j < sk: four keys at a time share each q load. */
// @ts-ignore: decorator
@inline function scoresRow(out: usize, q: usize, k: usize, sk: i32, dk: i32, ldk: i32, scale: f32): void {
  const stride = <usize>ldk << 2;
  const s = f32x4.splat(scale);
  let j = 0;
  for (; j + 4 <= sk; j += 4) {
    v128.store(out + (<usize>j << 2), f32x4.mul(dot4(q, k + <usize>j * stride, stride, dk), s));
  }
  for (; j < sk; j++) store<f32>(out + (<usize>j << 2), dot1(q, k + <usize>j * stride, dk) * scale);
}

/** [dot(q, k0), dot(q, k1), dot(q, k2), dot(q, k3)] over dk, key rows k0 + m·stride bytes. */
// @ts-ignore: decorator
@inline function dot4(q: usize, k0: usize, stride: usize, dk: i32): v128 {
  return dot4Rows(q, k0, k0 + stride, k0 + 2 * stride, k0 + 3 * stride, dk);
}

/** [dot(q, k0), dot(q, k1), dot(q, k2), dot(q, k3)] over dk, for four key rows anywhere. */
// @ts-ignore: decorator
@inline function dot4Rows(q: usize, k0: usize, k1: usize, k2: usize, k3: usize, dk: i32): v128 {
  let a0 = f32x4.splat(0);
  let a1 = a0;
  let a2 = a0;
  let a3 = a0;
  let d = 0;
  for (; d + 4 <= dk; d += 4) {
    const o = <usize>d << 2;
    const qv = v128.load(q + o);
    a0 = madd(qv, v128.load(k0 + o), a0);
    a1 = madd(qv, v128.load(k1 + o), a1);
    a2 = madd(qv, v128.load(k2 + o), a2);
    a3 = madd(qv, v128.load(k3 + o), a3);
  }
  // Transpose-and-add the four accumulators: lane m of the result sums the lanes of a_m.
  const a01 = f32x4.add(i32x4.shuffle(a0, a1, 0, 4, 1, 5), i32x4.shuffle(a0, a1, 2, 6, 3, 7));
  const a23 = f32x4.add(i32x4.shuffle(a2, a3, 0, 4, 1, 5), i32x4.shuffle(a2, a3, 2, 6, 3, 7));
  let dots = f32x4.add(i32x4.shuffle(a01, a23, 0, 1, 4, 5), i32x4.shuffle(a01, a23, 2, 3, 6, 7));
  if (d < dk) {
    let t0: f32 = 0;
    let t1: f32 = 0;
    let t2: f32 = 0;
    let t3: f32 = 0;
    for (; d < dk; d++) {
      const o = <usize>d << 2;
      const qs = load<f32>(q + o);
      t0 += qs * load<f32>(k0 + o);
      t1 += qs * load<f32>(k1 + o);
      t2 += qs * load<f32>(k2 + o);
      t3 += qs * load<f32>(k3 + o);
    }
    dots = f32x4.add(dots, f32x4(t0, t1, t2, t3));
  }
  return dots;
}

/** dot(q, k) over dk. */
// @ts-ignore: decorator
@inline function dot1(q: usize, k: usize, dk: i32): f32 {
  let acc = f32x4.splat(0);
  let d = 0;
  for (; d + 4 <= dk; d += 4) acc = madd(v128.load(q + (<usize>d << 2)), v128.load(k + (<usize>d << 2)), acc);
  let total = hsum(acc);
  for (; d < dk; d++) total += load<f32>(q + (<usize>d << 2)) * load<f32>(k + (<usize>d << 2));
  return total;
}

/** out[d] = Σ_{j < sk} p[j] · v[j·ldv + d] for d < dv: sixteen columns at a time in registers. */
// @ts-ignore: decorator
@inline function weightedRow(out: usize, p: usize, v: usize, sk: i32, dv: i32, ldv: i32): void {
  const stride = <usize>ldv << 2;
  let d = 0;
  for (; d + 16 <= dv; d += 16) {
    const col = v + (<usize>d << 2);
    let a0 = f32x4.splat(0);
    let a1 = a0;
    let a2 = a0;
    let a3 = a0;
    for (let j = 0; j < sk; j++) {
      const w = v128.load32_splat(p + (<usize>j << 2));
      const row = col + <usize>j * stride;
      a0 = madd(w, v128.load(row), a0);
      a1 = madd(w, v128.load(row, 16), a1);
      a2 = madd(w, v128.load(row, 32), a2);
      a3 = madd(w, v128.load(row, 48), a3);
    }
    const o = out + (<usize>d << 2);
    v128.store(o, a0);
    v128.store(o, a1, 16);
    v128.store(o, a2, 32);
    v128.store(o, a3, 48);
  }
  for (; d + 4 <= dv; d += 4) {
    const col = v + (<usize>d << 2);
    let acc = f32x4.splat(0);
    for (let j = 0; j < sk; j++) acc = madd(v128.load32_splat(p + (<usize>j << 2)), v128.load(col + <usize>j * stride), acc);
    v128.store(out + (<usize>d << 2), acc);
  }
  for (; d < dv; d++) {
    const col = v + (<usize>d << 2);
    let acc: f32 = 0;
    for (let j = 0; j < sk; j++) acc += load<f32>(p + (<usize>j << 2)) * load<f32>(col + <usize>j * stride);
    store<f32>(out + (<usize>d << 2), acc);
  }
}
