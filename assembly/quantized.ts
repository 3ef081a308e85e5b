// Int8 matrix multiply: out = act(a · W^T + bias) with W stored as int8, one scale per output
// row (W[j, :] ≈ Wq[j, :] · sw[j]), and a quantized per row (a[i, :] ≈ aq[i, :] · sa[i]) by
// quantizeRows before the product. The products are summed exactly in i32, so each build
// computes the same integers on every engine; the epilogue is
//   out[i, j] = act(f32(Σk aq[i, k] · Wq[j, k]) · (sw[j] · sa[i]) + bias[j]).
//
// Quantized rows (quantizeRows): kp = k rounded up to 4 elements per row, the padding zero.
//   relaxed build: u8, aq + 64 with |aq| <= 63 (7 bits: the operand of relaxed_dot_i8x16_i7x16_s
//                  must not set its top bit, where engines may differ)
//   SIMD128 build: i16, aq with |aq| <= 1023 (11 bits, the operand of i32x4.dot_i16x8_s: more
//                  were free, and make 94% of the German demo's greedy outputs those of float32
//                  where 7 bits make 88%; a K of at most 16384 keeps the sums inside i32)
//
// Packed layout (packQ8): ceil(n / 8) panels of NR = 8 output columns, each HEADER + kp · 8 bytes:
//   bias f32[8] | sw f32[8] | 64 · Σk Wq[j, k] i32[8] (what the +64 adds in the relaxed build)
//   then kp / 4 groups of 32 bytes, one per 4 elements of K: two quads of 4 columns, 16 bytes each,
//   relaxed: column c's 4 weights together      Wq[c, 4g .. 4g+4) for c = 0..3
//   SIMD128: the first two K of each column, then the last two  (Wq[c, 4g], Wq[c, 4g+1]) for
//            c = 0..3, then (Wq[c, 4g+2], Wq[c, 4g+3]): pairs, as dot_i16x8_s sums them
// Columns beyond n and K beyond k hold zeros, so kernels always compute 8 columns.
//
// One group of 4 K and 4 columns is one i32x4 of partial sums: relaxed, one relaxed dot of the
// 16 weights with the 4 activations splatted, then its pairs summed by a dot_i16x8_s with ones
// (held in a register: 16% faster than extadd_pairwise_i16x8_s, which V8 expands to three
// instructions); SIMD128, two widenings of the weights to i16 and two dot_i16x8_s with the
// activation pairs splatted. Not the relaxed
// dot-with-accumulate (relaxed_dot_i8x16_i7x16_add_s): Node 20's baseline compiler (Liftoff)
// computes it wrongly, and every function runs there first. The loops are the float kernel's
// (assembly/matmul.ts): m = 1 streams four panels at once (kernel1x32), other rows go 4 at a
// time over one panel (kernel4x8), the last block repeating its last row.

import { activate, storeRagged } from './matmul';
import { madd } from './simd';

// @ts-ignore: decorator
@inline const NR = 8;
// @ts-ignore: decorator
@inline const HEADER = 96;
// @ts-ignore: decorator
@inline const LEVELS: f32 = ASC_FEATURE_RELAXED_SIMD ? 63 : 1023;
// @ts-ignore: decorator
@inline const SHIFT = 64;
// Rows whose largest magnitude is at most this quantize to zeros.
// @ts-ignore: decorator
@inline const TINY: f32 = 1e-30;
// Bytes per quantized activation.
// @ts-ignore: decorator
@inline const AB: i32 = ASC_FEATURE_RELAXED_SIMD ? 1 : 2;
// Columns per group of panels (kernel1x32).
// @ts-ignore: decorator
@inline const GROUP = 4 * NR;
// Bytes of quantized rows that one chunk may take, so that they stay in L2 while panels pass.
// @ts-ignore: decorator
@inline const A_CHUNK_BYTES = 1 << 20;

/** k rounded up to whole groups of 4. */
// @ts-ignore: decorator
@inline function padded(k: i32): i32 {
  return (k + 3) & ~3;
}

/** Bytes that packQ8 writes for an [n, k] weight. */
export function packedSizeQ8(n: i32, k: i32): i32 {
  return ((n + NR - 1) / NR) * (HEADER + padded(k) * NR);
}

/** Bytes of one row that quantizeRows writes for k elements. */
export function quantizedRowBytes(k: i32): i32 {
  return padded(k) * AB;
}

/**
 * Packs Wq [n, k] int8 (row stride ldw bytes), its row scales sw [n] and bias [n] (0: none)
 * into the panel layout above.
 */
export function packQ8(packed: usize, w: usize, scales: usize, bias: usize, n: i32, k: i32, ldw: i32): void {
  const kp = padded(k);
  let dst = packed;
  for (let j0 = 0; j0 < n; j0 += NR) {
    for (let j = 0; j < NR; j++) {
      const col = j0 + j;
      const inside = col < n;
      const row = w + <usize>col * <usize>ldw;
      let sum = 0;
      if (inside) for (let kk = 0; kk < k; kk++) sum += <i32>load<i8>(row + kk);
      store<f32>(dst + (j << 2), inside && bias != 0 ? load<f32>(bias + (<usize>col << 2)) : 0);
      store<f32>(dst + 32 + (j << 2), inside ? load<f32>(scales + (<usize>col << 2)) : 0);
      store<i32>(dst + 64 + (j << 2), SHIFT * sum);
    }
    const body = dst + HEADER;
    for (let g = 0; g < kp; g += 4) {
      for (let j = 0; j < NR; j++) {
        const col = j0 + j;
        const quad = body + <usize>(g << 3) + ((j >> 2) << 4);
        for (let t = 0; t < 4; t++) {
          const kk = g + t;
          const v: i8 = col < n && kk < k ? load<i8>(w + <usize>col * <usize>ldw + kk) : 0;
          // relaxed: column c's 4 together; SIMD128: pairs of K, the first two of every column first
          const at = ASC_FEATURE_RELAXED_SIMD ? ((j & 3) << 2) + t : ((t >> 1) << 3) + ((j & 3) << 1) + (t & 1);
          store<i8>(quad + at, v);
        }
      }
    }
    dst += HEADER + kp * NR;
  }
}

/**
 * embedQ8 (elementwise.ts) reading the int8 rows and their scales from a q8 packed matrix
 * [vocab, dModel] (a generator tied to the embedding): out[i, :] = f32(Wq[ids[i], :]) ·
 * (sw[ids[i]] · scale) + pos[positions[i], :] (pos 0: none), with embedQ8's arithmetic lane for
 * lane. Row v is column v % 8 of panel v / 8: its scale in the header, its 4 weights of each
 * group of K in the build's quad layout above.
 */
export function embedPackedQ8(out: usize, packed: usize, ids: usize, pos: usize, positions: usize, n: i32, dModel: i32, scale: f32): void {
  const panelBytes = <usize>(HEADER + padded(dModel) * NR);
  const rowBytes = <usize>dModel << 2;
  for (let i = 0; i < n; i++) {
    const id = <usize>load<i32>(ids + (<usize>i << 2));
    const panel = packed + (id / NR) * panelBytes;
    const c = <i32>(id % NR);
    const quads = panel + HEADER + ((c >> 2) << 4) + (ASC_FEATURE_RELAXED_SIMD ? (c & 3) << 2 : (c & 3) << 1);
    const s = f32x4.splat(load<f32>(panel + 32 + (<usize>c << 2)) * scale);
    const add = pos ? pos + <usize>load<i32>(positions + (<usize>i << 2)) * rowBytes : 0;
    const dst = out + <usize>i * rowBytes;
    let j = 0;
    for (; j + 4 <= dModel; j += 4) {
      const at = quads + (<usize>j << 3); // group j / 4 is 32 bytes in
      // relaxed: the 4 weights together; SIMD128: the first two, then the last two 8 bytes on
      const four = ASC_FEATURE_RELAXED_SIMD ? load<i32>(at) : <i32>load<u16>(at) | (<i32>load<u16>(at + 8) << 16);
      const v = f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(i32x4.splat(four))));
      v128.store(dst + (<usize>j << 2), madd(v, s, add ? v128.load(add + (<usize>j << 2)) : f32x4.splat(0)));
    }
    const s1 = f32x4.extract_lane(s, 0);
    for (; j < dModel; j++) {
      const o = <usize>j << 2;
      const t = j & 3;
      const at = quads + (<usize>(j & ~3) << 3) + (ASC_FEATURE_RELAXED_SIMD ? t : ((t >> 1) << 3) + (t & 1));
      store<f32>(dst + o, <f32>load<i8>(at) * s1 + (add ? load<f32>(add + o) : 0));
    }
  }
}

/**
 * aq[m, kp] (row stride quantizedRowBytes(k)) and sa[m] from a[m, k] (row stride lda floats):
 * sa[i] = max |a[i, :]| / LEVELS and aq = round(a / sa), in the build's layout above. A zero
 * row gives sa = 0 and zeros.
 */
export function quantizeRows(aq: usize, sa: usize, a: usize, m: i32, k: i32, lda: i32): void {
  const rowB = <usize>quantizedRowBytes(k);
  for (let i = 0; i < m; i++) {
    const x = a + <usize>i * lda * 4;
    const out = aq + <usize>i * rowB;
    const top = largestMagnitude(x, k);
    const inv: f32 = top > TINY ? LEVELS / top : 0; // (63 / top overflows below about 2e-37)
    store<f32>(sa + (<usize>i << 2), top / LEVELS);
    const vinv = f32x4.splat(inv);
    let kk = 0;
    for (; kk + 4 <= k; kk += 4) {
      const q = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(x + (<usize>kk << 2)), vinv)));
      storeQuantized4(out + <usize>kk * AB, q);
    }
    for (; kk < padded(k); kk++) {
      const q: i32 = kk < k ? <i32>nearest<f32>(load<f32>(x + (<usize>kk << 2)) * inv) : 0;
      if (ASC_FEATURE_RELAXED_SIMD) store<u8>(out + kk, <u8>(q + SHIFT));
      else store<i16>(out + (<usize>kk << 1), <i16>q);
    }
  }
}

/** max |x[0..k)|. */
function largestMagnitude(x: usize, k: i32): f32 {
  let v = f32x4.splat(0);
  let kk = 0;
  for (; kk + 4 <= k; kk += 4) v = f32x4.max(v, f32x4.abs(v128.load(x + (<usize>kk << 2))));
  let top = max(max(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)), max(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)));
  for (; kk < k; kk++) top = max(top, abs(load<f32>(x + (<usize>kk << 2))));
  return top;
}

/** Four quantized activations (i32 lanes in [-LEVELS, LEVELS]) stored in the build's layout. */
// @ts-ignore: decorator
@inline function storeQuantized4(out: usize, q: v128): void {
  if (ASC_FEATURE_RELAXED_SIMD) {
    const u = i32x4.add(q, i32x4.splat(SHIFT));
    const h = i16x8.narrow_i32x4_s(u, u);
    v128.store32_lane(out, i8x16.narrow_i16x8_u(h, h), 0);
  } else {
    v128.store64_lane(out, i16x8.narrow_i32x4_s(q, q), 0);
  }
}

/** acc + the partial sums of 4 columns over 4 K at b (16 weights), x0 (and x1) the activations splatted; ones: i16x8.splat(1). */
// @ts-ignore: decorator
@inline function dot4(acc: v128, b: usize, x0: v128, x1: v128, ones: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(b), x0), ones));
  }
  const w = v128.load(b);
  const lo = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w), x0);
  return i32x4.add(acc, i32x4.add(lo, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w), x1)));
}

/**
 * out[m, n] (row stride ldo floats) = act(a · W^T + bias) from aq, sa of quantizeRows and the
 * packed W; act 0 none, 1 ReLU, 2 GELU, 3 SiLU.
 */
export function matmulQ8(out: usize, aq: usize, sa: usize, packed: usize, m: i32, k: i32, n: i32, ldo: i32, act: i32): void {
  const ldoB = <usize>ldo << 2;
  const rowB = <usize>quantizedRowBytes(k);
  const panelB = <usize>(HEADER + padded(k) * NR);
  const chunk = max(4, (A_CHUNK_BYTES / <i32>rowB) & ~3);
  const groups = padded(k) >> 2;
  for (let i0 = 0; i0 < m; i0 += chunk) {
    const rows = min(chunk, m - i0);
    const ai = aq + <usize>i0 * rowB;
    const si = sa + (<usize>i0 << 2);
    const oi = out + <usize>i0 * ldoB;
    let w = packed;
    for (let j0 = 0; j0 < n; j0 += GROUP) {
      const cols = min(GROUP, n - j0);
      const o = oi + (<usize>j0 << 2);
      if (rows == 1 && cols == GROUP) {
        kernel1x32(o, ai, load<f32>(si), w, panelB, groups);
      } else {
        for (let p = 0; p < cols; p += NR) {
          const wp = w + <usize>(p / NR) * panelB;
          for (let i = 0; i < rows; i += 4) {
            kernel4x8(o + (<usize>p << 2) + <usize>i * ldoB, ldoB, ai + <usize>i * rowB, rowB, si + (<usize>i << 2), wp, groups, min(4, rows - i), min(NR, cols - p));
          }
        }
      }
      if (act != 0) activate(o, ldoB, rows, cols, act);
      w += panelB * (GROUP / NR);
    }
  }
}

/**
 * Rows 0..mr-1 (1 <= mr <= 4) of out (stride ldoB bytes), columns 0..nr-1, from quantized rows
 * at a (stride rowB bytes) with scales at sa, and panel w over `groups` groups of 4 K.
 */
function kernel4x8(out: usize, ldoB: usize, a: usize, rowB: usize, sa: usize, w: usize, groups: i32, mr: i32, nr: i32): void {
  let a0 = a;
  let a1 = mr > 1 ? a0 + rowB : a0;
  let a2 = mr > 2 ? a1 + rowB : a1;
  let a3 = mr > 3 ? a2 + rowB : a2;
  const zero = i32x4.splat(0);
  let acc0lo = zero, acc0hi = zero, acc1lo = zero, acc1hi = zero;
  let acc2lo = zero, acc2hi = zero, acc3lo = zero, acc3hi = zero;
  let b = w + HEADER;
  const ones = i16x8.splat(1);
  for (let g = 0; g < groups; g++) {
    const wlo = v128.load(b);
    const whi = v128.load(b, 16);
    if (ASC_FEATURE_RELAXED_SIMD) {
      const x0 = v128.load32_splat(a0);
      acc0lo = dotRelaxed(acc0lo, wlo, x0, ones);
      acc0hi = dotRelaxed(acc0hi, whi, x0, ones);
      const x1 = v128.load32_splat(a1);
      acc1lo = dotRelaxed(acc1lo, wlo, x1, ones);
      acc1hi = dotRelaxed(acc1hi, whi, x1, ones);
      const x2 = v128.load32_splat(a2);
      acc2lo = dotRelaxed(acc2lo, wlo, x2, ones);
      acc2hi = dotRelaxed(acc2hi, whi, x2, ones);
      const x3 = v128.load32_splat(a3);
      acc3lo = dotRelaxed(acc3lo, wlo, x3, ones);
      acc3hi = dotRelaxed(acc3hi, whi, x3, ones);
    } else {
      // The weights widened once for the four rows.
      const lo01 = i16x8.extend_low_i8x16_s(wlo);
      const lo23 = i16x8.extend_high_i8x16_s(wlo);
      const hi01 = i16x8.extend_low_i8x16_s(whi);
      const hi23 = i16x8.extend_high_i8x16_s(whi);
      acc0lo = dot16(acc0lo, lo01, lo23, a0);
      acc0hi = dot16(acc0hi, hi01, hi23, a0);
      acc1lo = dot16(acc1lo, lo01, lo23, a1);
      acc1hi = dot16(acc1hi, hi01, hi23, a1);
      acc2lo = dot16(acc2lo, lo01, lo23, a2);
      acc2hi = dot16(acc2hi, hi01, hi23, a2);
      acc3lo = dot16(acc3lo, lo01, lo23, a3);
      acc3hi = dot16(acc3hi, hi01, hi23, a3);
    }
    a0 += 4 * AB;
    a1 += 4 * AB;
    a2 += 4 * AB;
    a3 += 4 * AB;
    b += 32;
  }
  const s1 = mr > 1 ? sa + 4 : sa;
  const s2 = mr > 2 ? s1 + 4 : s1;
  const s3 = mr > 3 ? s2 + 4 : s2;
  const o1 = mr > 1 ? out + ldoB : out;
  const o2 = mr > 2 ? o1 + ldoB : o1;
  const o3 = mr > 3 ? o2 + ldoB : o2;
  epilogue(out, acc0lo, acc0hi, load<f32>(sa), w, nr);
  epilogue(o1, acc1lo, acc1hi, load<f32>(s1), w, nr);
  epilogue(o2, acc2lo, acc2hi, load<f32>(s2), w, nr);
  epilogue(o3, acc3lo, acc3hi, load<f32>(s3), w, nr);
}

/** Relaxed: acc + the 4 columns' sums over 4 K, w their 16 weights, x the row's 4 activations splatted. */
// @ts-ignore: decorator
@inline function dotRelaxed(acc: v128, w: v128, x: v128, ones: v128): v128 {
  return i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(w, x), ones));
}

/** SIMD128: acc + the 4 columns' sums over 4 K, w01 and w23 their widened weights, a the row's 4 i16 activations. */
// @ts-ignore: decorator
@inline function dot16(acc: v128, w01: v128, w23: v128, a: usize): v128 {
  const lo = i32x4.dot_i16x8_s(w01, v128.load32_splat(a));
  return i32x4.add(acc, i32x4.add(lo, i32x4.dot_i16x8_s(w23, v128.load32_splat(a, 4))));
}

/** out[0..32) = one quantized row a (scale sa) · the four panels at w, w + panelB, ... */
function kernel1x32(out: usize, a: usize, sa: f32, w: usize, panelB: usize, groups: i32): void {
  const zero = i32x4.splat(0);
  let acc0 = zero, acc1 = zero, acc2 = zero, acc3 = zero;
  let acc4 = zero, acc5 = zero, acc6 = zero, acc7 = zero;
  let b = w + HEADER;
  const p2 = panelB << 1;
  const p3 = p2 + panelB;
  const end = b + (<usize>groups << 5);
  const ones = i16x8.splat(1);
  while (b < end) {
    const x0 = v128.load32_splat(a);
    const x1 = ASC_FEATURE_RELAXED_SIMD ? x0 : v128.load32_splat(a, 4);
    acc0 = dot4(acc0, b, x0, x1, ones);
    acc1 = dot4(acc1, b + 16, x0, x1, ones);
    acc2 = dot4(acc2, b + panelB, x0, x1, ones);
    acc3 = dot4(acc3, b + panelB + 16, x0, x1, ones);
    acc4 = dot4(acc4, b + p2, x0, x1, ones);
    acc5 = dot4(acc5, b + p2 + 16, x0, x1, ones);
    acc6 = dot4(acc6, b + p3, x0, x1, ones);
    acc7 = dot4(acc7, b + p3 + 16, x0, x1, ones);
    a += 4 * AB;
    b += 32;
  }
  epilogue(out, acc0, acc1, sa, w, NR);
  epilogue(out + 32, acc2, acc3, sa, w + panelB, NR);
  epilogue(out + 64, acc4, acc5, sa, w + 2 * panelB, NR);
  epilogue(out + 96, acc6, acc7, sa, w + 3 * panelB, NR);
}

/** Columns 0..nr-1 of one output row from its 8 sums (lo: columns 0..3, hi: 4..7), row scale sa and the panel's header. */
// @ts-ignore: decorator
@inline function epilogue(out: usize, lo: v128, hi: v128, sa: f32, panel: usize, nr: i32): void {
  if (ASC_FEATURE_RELAXED_SIMD) {
    lo = i32x4.sub(lo, v128.load(panel, 64));
    hi = i32x4.sub(hi, v128.load(panel, 80));
  }
  const s = f32x4.splat(sa);
  // Multiplied, then added: no fused multiply-add, so both builds round alike.
  const rlo = f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(lo), f32x4.mul(v128.load(panel, 32), s)), v128.load(panel));
  const rhi = f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(hi), f32x4.mul(v128.load(panel, 48), s)), v128.load(panel, 16));
  if (nr == NR) {
    v128.store(out, rlo);
    v128.store(out, rhi, 16);
  } else {
    storeRagged(out, rlo, rhi, nr);
  }
}
