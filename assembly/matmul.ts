// Packed-weight matrix multiply: out = act(a · W^T + bias), W in PyTorch's Linear layout [n, k].
//
// Packed layout (written once by `pack`, read in order by every kernel): ceil(n / 8) panels of
// NR = 8 output columns, each (k + 1) * 8 floats:
//
//   panel p: bias[8p .. 8p+8) | W[8p .. 8p+8, 0] | W[8p .. 8p+8, 1] | ... | W[8p .. 8p+8, k-1]
//
// i.e. the bias row first, then K rows of 8 floats, float j of row kk being W[8p + j, kk]. The
// columns of the last panel beyond n hold zeros, so kernels always compute 8 columns and only
// their stores are ragged.
//
// Kernels: a 4 x 8 register tile (4 rows of a, one panel: 8 v128 accumulators, the most V8 keeps
// in registers beside the operands) for blocks of four rows, and a 1 x 8 kernel that splits K
// four ways (8 independent accumulator chains, so that it is not latency-bound) for the other
// rows and for m = 1, where it streams the weights once.

import { gelu4 } from './math';
import { madd } from './simd';

// @ts-ignore: decorator
@inline const NR = 8;

/** Floats that `pack` writes for an [n, k] weight and its bias. */
export function packedSize(n: i32, k: i32): i32 {
  return ((n + NR - 1) / NR) * NR * (k + 1);
}

/** Packs W [n, k] (row stride ldw) and bias [n] (0: none) into the panel layout above. */
export function pack(packed: usize, w: usize, bias: usize, n: i32, k: i32, ldw: i32): void {
  let dst = packed;
  for (let j0 = 0; j0 < n; j0 += NR) {
    const nr = min(NR, n - j0);
    for (let j = 0; j < NR; j++) {
      store<f32>(dst + (j << 2), bias != 0 && j < nr ? load<f32>(bias + ((j0 + j) << 2)) : 0);
    }
    dst += NR << 2;
    for (let kk = 0; kk < k; kk++) {
      for (let j = 0; j < NR; j++) {
        const src = w + ((<usize>(j0 + j) * ldw + kk) << 2);
        store<f32>(dst + (j << 2), j < nr ? load<f32>(src) : 0);
      }
      dst += NR << 2;
    }
  }
}

/** out[m, n] (row stride ldo) = act(a[m, k] (row stride lda) · W^T + bias); act 0 none, 1 ReLU, 2 GELU. */
export function matmul(out: usize, a: usize, packed: usize, m: i32, k: i32, n: i32, lda: i32, ldo: i32, act: i32): void {
  const ldaB = <usize>lda << 2;
  const ldoB = <usize>ldo << 2;
  const panelB = <usize>(k + 1) * NR << 2;
  for (let j0 = 0; j0 < n; j0 += NR) {
    const nr = min(NR, n - j0);
    const w = packed + <usize>(j0 / NR) * panelB;
    const o = out + (<usize>j0 << 2);
    let i = 0;
    for (; i + 4 <= m; i += 4) {
      kernel4x8(o + <usize>i * ldoB, ldoB, a + <usize>i * ldaB, ldaB, w, k, nr);
    }
    for (; i < m; i++) {
      kernel1x8(o + <usize>i * ldoB, a + <usize>i * ldaB, w, k, nr);
    }
    if (act != 0) activate(o, ldoB, m, nr, act);
  }
}

/** Rows 0..3 of out (stride ldoB bytes), columns 0..nr-1 = a[4, k] (stride ldaB bytes) · panel w. */
function kernel4x8(out: usize, ldoB: usize, a: usize, ldaB: usize, w: usize, k: i32, nr: i32): void {
  let a0 = a;
  let a1 = a0 + ldaB;
  let a2 = a1 + ldaB;
  let a3 = a2 + ldaB;
  let acc0x0123 = v128.load(w);
  let acc0x4567 = v128.load(w, 16);
  let acc1x0123 = acc0x0123;
  let acc1x4567 = acc0x4567;
  let acc2x0123 = acc0x0123;
  let acc2x4567 = acc0x4567;
  let acc3x0123 = acc0x0123;
  let acc3x4567 = acc0x4567;
  w += NR << 2;
  const end = w + (<usize>k * NR << 2);
  do {
    const b0123 = v128.load(w);
    const b4567 = v128.load(w, 16);
    const x0 = v128.load32_splat(a0);
    acc0x0123 = madd(x0, b0123, acc0x0123);
    acc0x4567 = madd(x0, b4567, acc0x4567);
    const x1 = v128.load32_splat(a1);
    acc1x0123 = madd(x1, b0123, acc1x0123);
    acc1x4567 = madd(x1, b4567, acc1x4567);
    const x2 = v128.load32_splat(a2);
    acc2x0123 = madd(x2, b0123, acc2x0123);
    acc2x4567 = madd(x2, b4567, acc2x4567);
    const x3 = v128.load32_splat(a3);
    acc3x0123 = madd(x3, b0123, acc3x0123);
    acc3x4567 = madd(x3, b4567, acc3x4567);
    a0 += 4;
    a1 += 4;
    a2 += 4;
    a3 += 4;
    w += NR << 2;
  } while (w < end);
  if (nr == NR) {
    v128.store(out, acc0x0123);
    v128.store(out, acc0x4567, 16);
    out += ldoB;
    v128.store(out, acc1x0123);
    v128.store(out, acc1x4567, 16);
    out += ldoB;
    v128.store(out, acc2x0123);
    v128.store(out, acc2x4567, 16);
    out += ldoB;
    v128.store(out, acc3x0123);
    v128.store(out, acc3x4567, 16);
  } else {
    storeRagged(out, acc0x0123, acc0x4567, nr);
    out += ldoB;
    storeRagged(out, acc1x0123, acc1x4567, nr);
    out += ldoB;
    storeRagged(out, acc2x0123, acc2x4567, nr);
    out += ldoB;
    storeRagged(out, acc3x0123, acc3x4567, nr);
  }
}

/** Columns 0..nr-1 of one row of out = a[1, k] · panel w, K split four ways. */
function kernel1x8(out: usize, a: usize, w: usize, k: i32, nr: i32): void {
  let accAx0123 = v128.load(w);
  let accAx4567 = v128.load(w, 16);
  let accBx0123 = f32x4.splat(0);
  let accBx4567 = accBx0123;
  let accCx0123 = accBx0123;
  let accCx4567 = accBx0123;
  let accDx0123 = accBx0123;
  let accDx4567 = accBx0123;
  w += NR << 2;
  const end4 = a + (<usize>(k & ~3) << 2);
  while (a < end4) {
    const xA = v128.load32_splat(a);
    accAx0123 = madd(xA, v128.load(w), accAx0123);
    accAx4567 = madd(xA, v128.load(w, 16), accAx4567);
    const xB = v128.load32_splat(a, 4);
    accBx0123 = madd(xB, v128.load(w, 32), accBx0123);
    accBx4567 = madd(xB, v128.load(w, 48), accBx4567);
    const xC = v128.load32_splat(a, 8);
    accCx0123 = madd(xC, v128.load(w, 64), accCx0123);
    accCx4567 = madd(xC, v128.load(w, 80), accCx4567);
    const xD = v128.load32_splat(a, 12);
    accDx0123 = madd(xD, v128.load(w, 96), accDx0123);
    accDx4567 = madd(xD, v128.load(w, 112), accDx4567);
    a += 16;
    w += 4 * NR << 2;
  }
  const end = end4 + (<usize>(k & 3) << 2);
  while (a < end) {
    const xA = v128.load32_splat(a);
    accAx0123 = madd(xA, v128.load(w), accAx0123);
    accAx4567 = madd(xA, v128.load(w, 16), accAx4567);
    a += 4;
    w += NR << 2;
  }
  const lo = f32x4.add(f32x4.add(accAx0123, accBx0123), f32x4.add(accCx0123, accDx0123));
  const hi = f32x4.add(f32x4.add(accAx4567, accBx4567), f32x4.add(accCx4567, accDx4567));
  if (nr == NR) {
    v128.store(out, lo);
    v128.store(out, hi, 16);
  } else {
    storeRagged(out, lo, hi, nr);
  }
}

/** Stores the first nr (< 8) of the 8 floats lo | hi at out, touching nothing after them. */
// @ts-ignore: decorator
@inline function storeRagged(out: usize, lo: v128, hi: v128, nr: i32): void {
  if (nr & 4) {
    v128.store(out, lo);
    lo = hi;
    out += 16;
  }
  if (nr & 2) {
    v128.store64_lane(out, lo, 0);
    lo = v128.shuffle<f32>(lo, lo, 2, 3, 2, 3);
    out += 8;
  }
  if (nr & 1) v128.store32_lane(out, lo, 0);
}

/** Applies the activation in place to rows 0..m-1, columns 0..nr-1 (nr <= 8) of out. */
function activate(out: usize, ldoB: usize, m: i32, nr: i32, act: i32): void {
  for (let i = 0; i < m; i++) {
    let p = out;
    let c = nr;
    for (; c >= 4; c -= 4) {
      v128.store(p, act4(v128.load(p), act));
      p += 16;
    }
    for (; c > 0; c--) {
      store<f32>(p, f32x4.extract_lane(act4(f32x4.splat(load<f32>(p)), act), 0));
      p += 4;
    }
    out += ldoB;
  }
}

/** ReLU (act 1) or GELU (act 2) of four lanes. */
// @ts-ignore: decorator
@inline function act4(v: v128, act: i32): v128 {
  return act == 1 ? f32x4.max(v, f32x4.splat(0)) : gelu4(v);
}
