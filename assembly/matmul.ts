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
// Kernels. V8 (TurboFan) allocates 15 xmm registers and issues a basic block's loads before its
// arithmetic, so each kernel holds 8 accumulators and loads few vectors per K step (6; 9 in
// kernel1x32, which costs a spill that hides behind its memory-bound stream); unrolling K by hand
// only added spills (measured). 8 independent accumulator chains hide the 4-cycle latency of the
// multiply-add at 2 per cycle.
// - kernel4x8: 4 rows of a x one panel (4 broadcasts + 2 loads per K step). Fewer than 4 rows
//   repeat the last one, whose stores then rewrite the same values (as XNNPACK does).
// - kernel2x16, kernel1x32: 2 rows x two panels and 1 row x four panels, for the rows left over
//   by the 4-row blocks; with m = 1 (one decoded token) kernel1x32 streams the weights through
//   four panels at once, at the speed they arrive from memory.
// Loop order: columns in groups of four panels; in a group, each panel stays in L1 while every
// 4-row block of a passes over it, then the leftover rows take the group; a is split in chunks of
// rows that fit in L2, so it is read from L2 for every panel.

import { gelu4, silu4 } from './math';
import { madd } from './simd';

// @ts-ignore: decorator
@inline const NR = 8;

/** Floats that `pack` writes for an [n, k] weight and its bias. */
export function packedSize(n: i32, k: i32): i32 {
  return ((n + NR - 1) / NR) * NR * (k + 1);
}

/**
 * embed (elementwise.ts) reading the table's rows from its packed form: out[i, :] =
 * W[ids[i], :] · scale + pos[positions[i], :] (pos 0: none), for a generator whose W [vocab,
 * dModel] is the embedding too (tied), so the model holds the matrix once. Row v of W is column
 * v % 8 of panel v / 8, one float every 8; ids and positions int32, in range.
 */
export function embedPacked(out: usize, packed: usize, ids: usize, pos: usize, positions: usize, n: i32, dModel: i32, scale: f32): void {
  const panelBytes = <usize>NR * (dModel + 1) << 2;
  const rowBytes = <usize>dModel << 2;
  const s = f32x4.splat(scale);
  for (let i = 0; i < n; i++) {
    const id = <usize>load<i32>(ids + (<usize>i << 2));
    const src = packed + (id / <usize>NR) * panelBytes + ((<usize>NR + id % <usize>NR) << 2); // W[id, 0], past the bias row
    const add = pos ? pos + <usize>load<i32>(positions + (<usize>i << 2)) * rowBytes : 0;
    const dst = out + <usize>i * rowBytes;
    // embed's arithmetic lane for lane (madd by 4, then the tail), so both give the same bits.
    let kk = 0;
    for (; kk + 4 <= dModel; kk += 4) {
      const at = src + (<usize>kk * NR << 2);
      let v = f32x4.splat(load<f32>(at));
      v = f32x4.replace_lane(v, 1, load<f32>(at + (NR << 2)));
      v = f32x4.replace_lane(v, 2, load<f32>(at + (2 * NR << 2)));
      v = f32x4.replace_lane(v, 3, load<f32>(at + (3 * NR << 2)));
      const o = <usize>kk << 2;
      v128.store(dst + o, madd(v, s, add ? v128.load(add + o) : f32x4.splat(0)));
    }
    for (; kk < dModel; kk++) {
      const o = <usize>kk << 2;
      store<f32>(dst + o, load<f32>(src + (<usize>kk * NR << 2)) * scale + (add ? load<f32>(add + o) : 0));
    }
  }
}

/** Packs W [n, k] (row stride ldw) and bias [n] (0: none) into the panel layout above. */
export function pack(packed: usize, w: usize, bias: usize, n: i32, k: i32, ldw: i32): void {
  const ldwB = <usize>ldw << 2;
  let dst = packed;
  for (let j0 = 0; j0 < n; j0 += NR) {
    const nr = min(NR, n - j0);
    const rows = w + <usize>j0 * ldwB; // W[j0 .. j0+nr, :]
    for (let j = 0; j < NR; j++) {
      store<f32>(dst + (j << 2), bias != 0 && j < nr ? load<f32>(bias + (<usize>(j0 + j) << 2)) : 0);
    }
    dst += NR << 2;
    let kk = 0;
    if (nr == NR) {
      for (; kk + 4 <= k; kk += 4) {
        transpose8x4(dst, rows + (<usize>kk << 2), ldwB);
        dst += 4 * NR << 2;
      }
    }
    for (; kk < k; kk++) {
      for (let j = 0; j < NR; j++) {
        store<f32>(dst + (j << 2), j < nr ? load<f32>(rows + <usize>j * ldwB + (<usize>kk << 2)) : 0);
      }
      dst += NR << 2;
    }
  }
}

/** dst[4, 8] = the transpose of src[8, 4] (row stride ldB bytes): four packed K rows of a panel. */
function transpose8x4(dst: usize, src: usize, ldB: usize): void {
  for (let half: usize = 0; half < 32; half += 16) {
    const r0 = v128.load(src);
    const r1 = v128.load(src + ldB);
    const r2 = v128.load(src + 2 * ldB);
    const r3 = v128.load(src + 3 * ldB);
    const r01lo = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5); // r0[0] r1[0] r0[1] r1[1]
    const r23lo = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
    const r01hi = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7); // r0[2] r1[2] r0[3] r1[3]
    const r23hi = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
    v128.store(dst + half, v128.shuffle<i64>(r01lo, r23lo, 0, 2)); // column 0 of r0..r3
    v128.store(dst + half, v128.shuffle<i64>(r01lo, r23lo, 1, 3), 32);
    v128.store(dst + half, v128.shuffle<i64>(r01hi, r23hi, 0, 2), 64);
    v128.store(dst + half, v128.shuffle<i64>(r01hi, r23hi, 1, 3), 96);
    src += 4 * ldB;
  }
}

/** out[m, n] (row stride ldo) = act(a[m, k] (row stride lda) · W^T + bias); act 0 none, 1 ReLU, 2 GELU, 3 SiLU. */
export function matmul(out: usize, a: usize, packed: usize, m: i32, k: i32, n: i32, lda: i32, ldo: i32, act: i32): void {
  const ldaB = <usize>lda << 2;
  const ldoB = <usize>ldo << 2;
  const panelB = <usize>(k + 1) * NR << 2;
  const chunk = max(4, (A_CHUNK_BYTES / (k << 2)) & ~3);
  for (let i0 = 0; i0 < m; i0 += chunk) {
    const rows = min(chunk, m - i0);
    const full = rows & ~3;
    const ai = a + <usize>i0 * ldaB;
    const oi = out + <usize>i0 * ldoB;
    let w = packed;
    for (let j0 = 0; j0 < n; j0 += GROUP) {
      const cols = min(GROUP, n - j0);
      const o = oi + (<usize>j0 << 2);
      for (let p = 0; p < cols; p += NR) {
        const wp = w + <usize>(p / NR) * panelB;
        for (let i = 0; i < full; i += 4) {
          kernel4x8(o + (<usize>p << 2) + <usize>i * ldoB, ldoB, ai + <usize>i * ldaB, ldaB, wp, k, 4, min(NR, cols - p));
        }
      }
      if (rows > full) {
        leftoverRows(o + <usize>full * ldoB, ldoB, ai + <usize>full * ldaB, ldaB, w, panelB, k, rows - full, cols);
      }
      if (act != 0) activate(o, ldoB, rows, cols, act);
      w += panelB * (GROUP / NR);
    }
  }
}

// Columns per group of panels.
// @ts-ignore: decorator
@inline const GROUP = 4 * NR;

// Bytes of a that one chunk of rows may take, so that it stays in L2 (2 MB here) beside the
// panels while they pass.
// @ts-ignore: decorator
@inline const A_CHUNK_BYTES = 1 << 20;

/**
 * Rows 0..mr-1 (mr < 4) of out, columns 0..cols-1 (cols <= 32) = a[mr, k] · the panels at w
 * (panelB bytes apart). Strides in bytes.
 */
function leftoverRows(out: usize, ldoB: usize, a: usize, ldaB: usize, w: usize, panelB: usize, k: i32, mr: i32, cols: i32): void {
  if (cols == GROUP && mr == 1) {
    kernel1x32(out, a, w, panelB, k);
  } else if (cols == GROUP && mr == 2) {
    kernel2x16(out, ldoB, a, ldaB, w, panelB, k);
    kernel2x16(out + (2 * NR << 2), ldoB, a, ldaB, w + 2 * panelB, panelB, k);
  } else {
    for (let p = 0; p < cols; p += NR) {
      kernel4x8(out + (<usize>p << 2), ldoB, a, ldaB, w + <usize>(p / NR) * panelB, k, mr, min(NR, cols - p));
    }
  }
}

/**
 * Rows 0..mr-1 (1 <= mr <= 4) of out (stride ldoB bytes), columns 0..nr-1 = a[mr, k] (stride
 * ldaB bytes) · panel w.
 */
function kernel4x8(out: usize, ldoB: usize, a: usize, ldaB: usize, w: usize, k: i32, mr: i32, nr: i32): void {
  let a0 = a;
  let a1 = mr > 1 ? a0 + ldaB : a0;
  let a2 = mr > 2 ? a1 + ldaB : a1;
  let a3 = mr > 3 ? a2 + ldaB : a2;
  let acc0x0123 = v128.load(w);
  let acc0x4567 = v128.load(w, 16);
  let acc1x0123 = acc0x0123;
  let acc1x4567 = acc0x4567;
  let acc2x0123 = acc0x0123;
  let acc2x4567 = acc0x4567;
  let acc3x0123 = acc0x0123;
  let acc3x4567 = acc0x4567;
  w += NR << 2;
  const end = a0 + (<usize>k << 2);
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
  } while (a0 < end);
  const o0 = out;
  const o1 = mr > 1 ? o0 + ldoB : o0;
  const o2 = mr > 2 ? o1 + ldoB : o1;
  const o3 = mr > 3 ? o2 + ldoB : o2;
  if (nr == NR) {
    v128.store(o0, acc0x0123);
    v128.store(o0, acc0x4567, 16);
    v128.store(o1, acc1x0123);
    v128.store(o1, acc1x4567, 16);
    v128.store(o2, acc2x0123);
    v128.store(o2, acc2x4567, 16);
    v128.store(o3, acc3x0123);
    v128.store(o3, acc3x4567, 16);
  } else {
    storeRagged(o0, acc0x0123, acc0x4567, nr);
    storeRagged(o1, acc1x0123, acc1x4567, nr);
    storeRagged(o2, acc2x0123, acc2x4567, nr);
    storeRagged(o3, acc3x0123, acc3x4567, nr);
  }
}

/** Rows 0..1 of out, columns 0..15 = a[2, k] · the two panels at w and w + panelB. Strides in bytes. */
function kernel2x16(out: usize, ldoB: usize, a: usize, ldaB: usize, w: usize, panelB: usize, k: i32): void {
  let a0 = a;
  let a1 = a0 + ldaB;
  let w0 = w;
  let w1 = w0 + panelB;
  let acc0x0123 = v128.load(w0);
  let acc0x4567 = v128.load(w0, 16);
  let acc0x89AB = v128.load(w1);
  let acc0xCDEF = v128.load(w1, 16);
  let acc1x0123 = acc0x0123;
  let acc1x4567 = acc0x4567;
  let acc1x89AB = acc0x89AB;
  let acc1xCDEF = acc0xCDEF;
  w0 += NR << 2;
  w1 += NR << 2;
  const end = a0 + (<usize>k << 2);
  do {
    const b0123 = v128.load(w0);
    const b4567 = v128.load(w0, 16);
    const b89AB = v128.load(w1);
    const bCDEF = v128.load(w1, 16);
    const x0 = v128.load32_splat(a0);
    acc0x0123 = madd(x0, b0123, acc0x0123);
    acc0x4567 = madd(x0, b4567, acc0x4567);
    acc0x89AB = madd(x0, b89AB, acc0x89AB);
    acc0xCDEF = madd(x0, bCDEF, acc0xCDEF);
    const x1 = v128.load32_splat(a1);
    acc1x0123 = madd(x1, b0123, acc1x0123);
    acc1x4567 = madd(x1, b4567, acc1x4567);
    acc1x89AB = madd(x1, b89AB, acc1x89AB);
    acc1xCDEF = madd(x1, bCDEF, acc1xCDEF);
    a0 += 4;
    a1 += 4;
    w0 += NR << 2;
    w1 += NR << 2;
  } while (a0 < end);
  const o1 = out + ldoB;
  v128.store(out, acc0x0123);
  v128.store(out, acc0x4567, 16);
  v128.store(out, acc0x89AB, 32);
  v128.store(out, acc0xCDEF, 48);
  v128.store(o1, acc1x0123);
  v128.store(o1, acc1x4567, 16);
  v128.store(o1, acc1x89AB, 32);
  v128.store(o1, acc1xCDEF, 48);
}

/** out[0..32) = a[k] · the four panels at w, w + panelB, ... (column 8p + j: column j of panel p). */
function kernel1x32(out: usize, a: usize, w: usize, panelB: usize, k: i32): void {
  let w0 = w;
  let w1 = w0 + panelB;
  let w2 = w1 + panelB;
  let w3 = w2 + panelB;
  let acc0x0123 = v128.load(w0);
  let acc0x4567 = v128.load(w0, 16);
  let acc1x0123 = v128.load(w1);
  let acc1x4567 = v128.load(w1, 16);
  let acc2x0123 = v128.load(w2);
  let acc2x4567 = v128.load(w2, 16);
  let acc3x0123 = v128.load(w3);
  let acc3x4567 = v128.load(w3, 16);
  w0 += NR << 2;
  w1 += NR << 2;
  w2 += NR << 2;
  w3 += NR << 2;
  const end = a + (<usize>k << 2);
  do {
    const x = v128.load32_splat(a);
    acc0x0123 = madd(x, v128.load(w0), acc0x0123);
    acc0x4567 = madd(x, v128.load(w0, 16), acc0x4567);
    acc1x0123 = madd(x, v128.load(w1), acc1x0123);
    acc1x4567 = madd(x, v128.load(w1, 16), acc1x4567);
    acc2x0123 = madd(x, v128.load(w2), acc2x0123);
    acc2x4567 = madd(x, v128.load(w2, 16), acc2x4567);
    acc3x0123 = madd(x, v128.load(w3), acc3x0123);
    acc3x4567 = madd(x, v128.load(w3, 16), acc3x4567);
    a += 4;
    w0 += NR << 2;
    w1 += NR << 2;
    w2 += NR << 2;
    w3 += NR << 2;
  } while (a < end);
  v128.store(out, acc0x0123);
  v128.store(out, acc0x4567, 16);
  v128.store(out, acc1x0123, 32);
  v128.store(out, acc1x4567, 48);
  v128.store(out, acc2x0123, 64);
  v128.store(out, acc2x4567, 80);
  v128.store(out, acc3x0123, 96);
  v128.store(out, acc3x4567, 112);
}

/** Stores the first nr (< 8) of the 8 floats lo | hi at out, touching nothing after them. */
// @ts-ignore: decorator
@inline export function storeRagged(out: usize, lo: v128, hi: v128, nr: i32): void {
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

/** Applies the activation in place to rows 0..m-1, columns 0..cols-1 of out (stride ldoB bytes). */
export function activate(out: usize, ldoB: usize, m: i32, cols: i32, act: i32): void {
  for (let i = 0; i < m; i++) {
    let p = out;
    let c = cols;
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

/** ReLU (act 1), GELU (act 2) or SiLU (act 3) of four lanes. ReLU keeps NaN, as max(x, 0) does in PyTorch. */
// @ts-ignore: decorator
@inline function act4(v: v128, act: i32): v128 {
  if (act == 1) return f32x4.pmax(v, f32x4.splat(0));
  return act == 2 ? gelu4(v) : silu4(v);
}
