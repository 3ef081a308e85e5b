import { WasmformerError } from '../errors.js';
import { index, type Arena, type Region } from './arena.js';
import type { Parallel } from './threads.js';

/** The raw exports of the kernel module (assembly/index.ts). Pointers are byte offsets. */
export interface KernelExports {
  heapBase(): number;
  relaxed(): number;
  packedSize(n: number, k: number): number;
  pack(packed: number, w: number, bias: number, n: number, k: number, ldw: number): void;
  matmul(out: number, a: number, packed: number, m: number, k: number, n: number, lda: number, ldo: number, act: number): void;
  packedSizeQ8(n: number, k: number): number;
  quantizedRowBytes(k: number): number;
  packQ8(packed: number, w: number, scales: number, bias: number, n: number, k: number, ldw: number): void;
  quantizeRows(aq: number, sa: number, a: number, m: number, k: number, lda: number): void;
  matmulQ8(out: number, aq: number, sa: number, packed: number, m: number, k: number, n: number, ldo: number, act: number): void;
  qkT(out: number, q: number, k: number, sq: number, sk: number, dk: number, ldq: number, ldk: number, ldo: number, scale: number): void;
  pv(out: number, p: number, v: number, sq: number, sk: number, dv: number, ldp: number, ldv: number, ldo: number): void;
  attention(out: number, q: number, k: number, v: number, probs: number, sq: number, sk: number, nhead: number, dk: number, ldq: number, ldk: number, ldv: number, ldo: number, scale: number, causalOffset: number, keyMask: number, headStride: number): void;
  softmax(x: number, rows: number, cols: number, ld: number, scale: number, causalOffset: number, keyMask: number): void;
  logSoftmax(x: number, rows: number, cols: number, ld: number): void;
  layernorm(out: number, sum: number, x: number, r: number, gamma: number, beta: number, rows: number, n: number, eps: number): void;
  gelu(out: number, x: number, n: number): void;
  silu(out: number, x: number, n: number): void;
  relu(out: number, x: number, n: number): void;
  add(out: number, a: number, b: number, n: number): void;
  vexp(out: number, x: number, n: number): void;
  embed(out: number, table: number, ids: number, pos: number, positions: number, n: number, dModel: number, scale: number): void;
  embedQ8(out: number, table: number, scales: number, ids: number, pos: number, positions: number, n: number, dModel: number, scale: number): void;
  embedPacked(out: number, packed: number, ids: number, pos: number, positions: number, n: number, dModel: number, scale: number): void;
  embedPackedQ8(out: number, packed: number, ids: number, pos: number, positions: number, n: number, dModel: number, scale: number): void;
  attendRows(out: number, q: number, base: number, probs: number, rows: number, nhead: number, dk: number, ldq: number, ldo: number,
    tables: number, tableStride: number, counts: number, kAdd: number, vAdd: number, scale: number, probsStride: number): void;
  argmax(x: number, n: number): number;
}

/** The activation fused into a matmul's epilogue. */
export const enum Act {
  None = 0,
  Relu = 1,
  Gelu = 2,
  Silu = 3,
}

/**
 * A weight matrix packed once for a matmul kernel; `y = x W^T + b`, W is [n, k]: float32 (pack,
 * assembly/matmul.ts) or int8 with one scale per output row (packQ8, assembly/quantized.ts).
 */
export interface Packed {
  readonly region: Region;
  readonly n: number; // output features
  readonly k: number; // input features
  readonly dtype: 'f32' | 'q8';
}

/** The longest input of a q8 matmul: its i32 sums stay exact (assembly/quantized.ts). */
export const MAX_Q8_K = 16384;

/** Int8 values with one float32 scale per row: row i ≈ values[i, :] · scales[i]. */
export interface Quantized {
  readonly values: Int8Array; // [rows, cols]
  readonly scales: Float32Array; // [rows]
}

/** Where a q8 matmul quantizes its input rows: `quantizedRowBytes(k)` bytes per row, one scale per row. */
export interface QuantizedRows {
  readonly values: Region;
  readonly scales: Region;
}

/** Every region argument pairs with an element offset (`at`) into it, so strided slices and
 * cache rows are reached without copies and without allocating a view in the decoding loop. */
export class Kernels {
  readonly raw: KernelExports;
  readonly arena: Arena;
  /** The matmuls and attention: split across the runtime's threads (threads.ts), or the raw exports. */
  private readonly split: Parallel;

  constructor(raw: KernelExports, arena: Arena, split: Parallel = raw) {
    this.raw = raw;
    this.arena = arena;
    this.split = split;
  }

  /** Floats that the packed form of an [n, k] weight with its bias takes. */
  packedLength(n: number, k: number): number {
    positive('packedLength', 'n', n);
    positive('packedLength', 'k', k);
    return this.raw.packedSize(n, k);
  }

  /** Packs W [n, k] (row stride ldw) and bias [n] (or none) into a new region. */
  pack(w: Region, wAt: number, bias: Region | null, n: number, k: number, ldw: number, label: string): Packed {
    const region = this.arena.alloc(this.packedLength(n, k), label);
    return this.packInto(region, w, wAt, bias, n, k, ldw);
  }

  /** Packs W [n, k] (row stride ldw) and bias [n] (or none) into `dest`. */
  packInto(dest: Region, w: Region, wAt: number, bias: Region | null, n: number, k: number, ldw: number): Packed {
    span('pack', 'packed', dest, 0, 1, this.packedLength(n, k), 0);
    span('pack', 'w', w, wAt, n, k, ldw);
    if (bias) span('pack', 'bias', bias, 0, 1, n, n);
    this.raw.pack(dest.ptr, addr(w, wAt), bias ? bias.ptr : 0, n, k, ldw);
    return { region: dest, n, k, dtype: 'f32' };
  }

  /** Elements (4 bytes) that the q8 packed form of an [n, k] weight with its bias takes. */
  packedLengthQ8(n: number, k: number): number {
    positive('packedLengthQ8', 'n', n);
    positive('packedLengthQ8', 'k', k);
    return this.raw.packedSizeQ8(n, k) / 4;
  }

  /** Bytes of one quantized input row of k elements (the build's layout: assembly/quantized.ts). */
  quantizedRowBytes(k: number): number {
    positive('quantizedRowBytes', 'k', k);
    return this.raw.quantizedRowBytes(k);
  }

  /** Packs int8 W [n, k] (dense bytes in w), its row scales [n] and bias [n] (or none) into `dest`. */
  packQ8Into(dest: Region, w: Region, scales: Region, bias: Region | null, n: number, k: number): Packed {
    if (k > MAX_Q8_K) throw new WasmformerError('BAD_ARGUMENT', `packQ8: k (${k}) is over ${MAX_Q8_K}, where int8 sums could overflow`);
    span('packQ8', 'packed', dest, 0, 1, this.packedLengthQ8(n, k), 0);
    span('packQ8', 'w', w, 0, 1, Math.ceil((n * k) / 4), 0);
    span('packQ8', 'scales', scales, 0, 1, n, n);
    if (bias) span('packQ8', 'bias', bias, 0, 1, n, n);
    this.raw.packQ8(dest.ptr, w.ptr, scales.ptr, bias ? bias.ptr : 0, n, k, k);
    return { region: dest, n, k, dtype: 'q8' };
  }

  /** out[m, n] (row stride ldo) = act(a[m, k] (row stride lda) · W^T + bias). */
  matmul(out: Region, outAt: number, a: Region, aAt: number, w: Packed, m: number, lda: number, ldo: number, act: Act = Act.None): void {
    this.checkMatmul('matmul', out, outAt, a, aAt, w, m, lda, ldo, act);
    this.split.matmul(addr(out, outAt), addr(a, aAt), w.region.ptr, m, w.k, w.n, lda, ldo, act);
  }

  /**
   * out[m, n] (row stride ldo) = act(a[m, k] (row stride lda) · W^T + bias) for int8 W: a's rows
   * are quantized into `rows` first (7 bits, one scale per row; assembly/quantized.ts).
   */
  matmulQ8(out: Region, outAt: number, a: Region, aAt: number, w: Packed, m: number, lda: number, ldo: number, act: Act, rows: QuantizedRows): void {
    this.checkMatmul('matmulQ8', out, outAt, a, aAt, w, m, lda, ldo, act);
    span('matmulQ8', 'quantized rows', rows.values, 0, 1, Math.ceil((m * this.raw.quantizedRowBytes(w.k)) / 4), 0);
    span('matmulQ8', 'row scales', rows.scales, 0, 1, m, m);
    this.raw.quantizeRows(rows.values.ptr, rows.scales.ptr, addr(a, aAt), m, w.k, lda);
    this.split.matmulQ8(addr(out, outAt), rows.values.ptr, rows.scales.ptr, w.region.ptr, m, w.k, w.n, ldo, act);
  }

  private checkMatmul(kernel: string, out: Region, outAt: number, a: Region, aAt: number, w: Packed, m: number, lda: number, ldo: number, act: Act): void {
    positive(kernel, 'm', m);
    span(kernel, 'a', a, aAt, m, w.k, lda);
    span(kernel, 'out', out, outAt, m, w.n, ldo);
    if (out === a || out === w.region) {
      throw new WasmformerError('BAD_ARGUMENT', `${kernel}: out (${out.label}) must not be its own input`);
    }
    if (act !== Act.None && act !== Act.Relu && act !== Act.Gelu && act !== Act.Silu) {
      throw new WasmformerError('BAD_ARGUMENT', `${kernel}: act must be 0 (none), 1 (ReLU), 2 (GELU) or 3 (SiLU), got ${act}`);
    }
    if (w.dtype !== (kernel === 'matmul' ? 'f32' : 'q8')) {
      throw new WasmformerError('BAD_ARGUMENT', `${kernel}: the weight is packed as ${w.dtype}`);
    }
  }

  /**
   * Multi-head scaled dot-product attention over strided slices, all heads in one call.
   * q [sq, nhead*dk] (stride ldq), k and v [sk, nhead*dk] (strides ldk, ldv), out likewise.
   * probs receives softmax(scale · q_h k_h^T + masks) of head h at h*headStride (headStride 0:
   * one [sq, sk] scratch reused by every head). Query i sees key j only when
   * j <= i + causalOffset (causalOffset < 0: no causal mask) and keyMask[j] is 0 (it holds 0 or
   * -Infinity per key; null: no padding mask).
   */
  attention(
    out: Region, outAt: number, q: Region, qAt: number, k: Region, kAt: number, v: Region, vAt: number,
    probs: Region, sq: number, sk: number, nhead: number, dk: number,
    ldq: number, ldk: number, ldv: number, ldo: number,
    scale: number, causalOffset: number, keyMask: Region | null, headStride: number,
  ): void {
    positive('attention', 'sq', sq);
    positive('attention', 'sk', sk);
    positive('attention', 'nhead', nhead);
    positive('attention', 'dk', dk);
    // The probs span below is only a bound for headStride >= 0: a negative one would place
    // heads before probs.ptr.
    if (!Number.isInteger(headStride) || headStride < 0) {
      throw new WasmformerError('BAD_ARGUMENT', `attention: headStride must be a non-negative integer, got ${headStride}`);
    }
    const width = nhead * dk;
    span('attention', 'q', q, qAt, sq, width, ldq);
    span('attention', 'k', k, kAt, sk, width, ldk);
    span('attention', 'v', v, vAt, sk, width, ldv);
    span('attention', 'out', out, outAt, sq, width, ldo);
    span('attention', 'probs', probs, 0, 1, (nhead - 1) * headStride + sq * sk, 0);
    if (keyMask) span('attention', 'keyMask', keyMask, 0, 1, sk, sk);
    this.split.attention(
      addr(out, outAt), addr(q, qAt), addr(k, kAt), addr(v, vAt), probs.ptr, sq, sk, nhead, dk,
      ldq, ldk, ldv, ldo, scale, causalOffset, keyMask ? keyMask.ptr : 0, headStride,
    );
  }

  /**
   * Multi-head attention of `rows` single queries, each over its own keys, found through a
   * table (see assembly/attention.ts): query r (q row r, stride ldq) attends to counts[r] keys
   * whose rows start at the absolute element offsets tables[r · tableStride + j]; the key at
   * + kAdd, the value at + vAdd, nhead·dk floats each. Probabilities of row r go to probs at
   * r · probsStride (0: one scratch for all). Counts are checked here; the tables' entries are
   * the DecoderState's, which makes them from its own blocks.
   */
  attendRows(
    out: Region, q: Region, probs: Region, rows: number, nhead: number, dk: number, ldq: number, ldo: number,
    tables: Region, tableStride: number, counts: Region, kAdd: number, vAdd: number, scale: number, probsStride: number,
  ): void {
    positive('attendRows', 'rows', rows);
    positive('attendRows', 'nhead', nhead);
    positive('attendRows', 'dk', dk);
    positive('attendRows', 'tableStride', tableStride);
    const width = nhead * dk;
    span('attendRows', 'q', q, 0, rows, width, ldq);
    span('attendRows', 'out', out, 0, rows, width, ldo);
    span('attendRows', 'tables', tables, 0, rows, tableStride, tableStride);
    span('attendRows', 'counts', counts, 0, 1, rows, rows);
    const i32 = this.arena.i32();
    let most = 0;
    for (let r = 0; r < rows; r++) {
      const n = i32[index(counts) + r];
      if (!(n >= 1 && n <= tableStride)) {
        throw new WasmformerError('BAD_ARGUMENT', `attendRows: row ${r} has ${n} keys, not in [1, ${tableStride}]`);
      }
      most = Math.max(most, n);
    }
    span('attendRows', 'probs', probs, 0, probsStride === 0 ? 1 : rows, nhead * most, probsStride);
    this.split.attendRows(out.ptr, q.ptr, 0, probs.ptr, rows, nhead, dk, ldq, ldo, tables.ptr, tableStride, counts.ptr, kAdd, vAdd, scale, probsStride);
  }

  /** scores[sq, sk] (stride ldo) = scale · q[sq, dk] · k[sk, dk]^T, strided rows. */
  qkT(out: Region, outAt: number, q: Region, qAt: number, k: Region, kAt: number, sq: number, sk: number, dk: number, ldq: number, ldk: number, ldo: number, scale: number): void {
    positive('qkT', 'sq', sq);
    positive('qkT', 'sk', sk);
    positive('qkT', 'dk', dk);
    span('qkT', 'q', q, qAt, sq, dk, ldq);
    span('qkT', 'k', k, kAt, sk, dk, ldk);
    span('qkT', 'out', out, outAt, sq, sk, ldo);
    this.raw.qkT(addr(out, outAt), addr(q, qAt), addr(k, kAt), sq, sk, dk, ldq, ldk, ldo, scale);
  }

  /** out[sq, dv] (stride ldo) = p[sq, sk] · v[sk, dv], strided rows. */
  pv(out: Region, outAt: number, p: Region, pAt: number, v: Region, vAt: number, sq: number, sk: number, dv: number, ldp: number, ldv: number, ldo: number): void {
    positive('pv', 'sq', sq);
    positive('pv', 'sk', sk);
    positive('pv', 'dv', dv);
    span('pv', 'p', p, pAt, sq, sk, ldp);
    span('pv', 'v', v, vAt, sk, dv, ldv);
    span('pv', 'out', out, outAt, sq, dv, ldo);
    this.raw.pv(addr(out, outAt), addr(p, pAt), addr(v, vAt), sq, sk, dv, ldp, ldv, ldo);
  }

  /** In place, each of `rows` rows of x (stride ld): softmax(scale · x + masks), as in attention. */
  softmax(x: Region, xAt: number, rows: number, cols: number, ld: number, scale: number, causalOffset: number, keyMask: Region | null): void {
    positive('softmax', 'rows', rows);
    positive('softmax', 'cols', cols);
    span('softmax', 'x', x, xAt, rows, cols, ld);
    if (keyMask) span('softmax', 'keyMask', keyMask, 0, 1, cols, cols);
    this.raw.softmax(addr(x, xAt), rows, cols, ld, scale, causalOffset, keyMask ? keyMask.ptr : 0);
  }

  /** In place, each of `rows` rows of x (stride ld): log_softmax, as beam search takes a step's logits. */
  logSoftmax(x: Region, xAt: number, rows: number, cols: number, ld: number): void {
    positive('logSoftmax', 'rows', rows);
    positive('logSoftmax', 'cols', cols);
    span('logSoftmax', 'x', x, xAt, rows, cols, ld);
    this.raw.logSoftmax(addr(x, xAt), rows, cols, ld);
  }

  /**
   * out[rows, n] = LayerNorm(x + r) · gamma + beta (r null: no residual); when `sum` is given it
   * also receives x + r (pre-LN keeps the residual stream there). out and sum may alias x or r.
   */
  layernorm(out: Region, sum: Region | null, x: Region, r: Region | null, gamma: Region, beta: Region, rows: number, n: number, eps: number): void {
    positive('layernorm', 'rows', rows);
    positive('layernorm', 'n', n);
    // Written out, not looped over an array: this runs in the decoding loop, which allocates nothing.
    span('layernorm', 'out', out, 0, rows, n, n);
    if (sum) span('layernorm', 'sum', sum, 0, rows, n, n);
    span('layernorm', 'x', x, 0, rows, n, n);
    if (r) span('layernorm', 'r', r, 0, rows, n, n);
    span('layernorm', 'gamma', gamma, 0, 1, n, n);
    span('layernorm', 'beta', beta, 0, 1, n, n);
    this.raw.layernorm(out.ptr, sum ? sum.ptr : 0, x.ptr, r ? r.ptr : 0, gamma.ptr, beta.ptr, rows, n, eps);
  }

  /** out[n] = f(x[n]) for the elementwise kernels gelu (exact erf form), silu, relu, exp. */
  unary(kernel: 'gelu' | 'silu' | 'relu' | 'vexp', out: Region, x: Region, n: number): void {
    positive(kernel, 'n', n);
    span(kernel, 'x', x, 0, 1, n, n);
    span(kernel, 'out', out, 0, 1, n, n);
    this.raw[kernel](out.ptr, x.ptr, n);
  }

  /** out[n] = a[n] + b[n]. */
  add(out: Region, a: Region, b: Region, n: number): void {
    positive('add', 'n', n);
    span('add', 'out', out, 0, 1, n, n);
    span('add', 'a', a, 0, 1, n, n);
    span('add', 'b', b, 0, 1, n, n);
    this.raw.add(out.ptr, a.ptr, b.ptr, n);
  }

  /**
   * out[n, dModel] = table[ids[i]] · scale + pos's row positions[i] (pos null: no positions).
   * Ids and positions are int32 (in `ids` and `positions`) and must lie in [0, vocab) and
   * [0, pos rows): checked here, as the kernel trusts them.
   */
  embed(out: Region, ids: Region, table: Region, vocab: number, pos: Region | null, positions: Region | null, n: number, dModel: number, scale: number): void {
    this.checkEmbed(out, ids, vocab, pos, positions, n, dModel);
    span('embed', 'table', table, 0, vocab, dModel, dModel);
    this.raw.embed(out.ptr, table.ptr, ids.ptr, pos ? pos.ptr : 0, pos ? positions!.ptr : 0, n, dModel, scale);
  }

  /**
   * embed with an int8 table [vocab, dModel] (dense bytes) and its row scales [vocab]: row id is
   * table[id] · scales[id] · scale.
   */
  embedQ8(out: Region, ids: Region, table: Region, scales: Region, vocab: number, pos: Region | null, positions: Region | null, n: number, dModel: number, scale: number): void {
    this.checkEmbed(out, ids, vocab, pos, positions, n, dModel);
    span('embed', 'table', table, 0, 1, Math.ceil((vocab * dModel) / 4), 0);
    span('embed', 'scales', scales, 0, 1, vocab, vocab);
    this.raw.embedQ8(out.ptr, table.ptr, scales.ptr, ids.ptr, pos ? pos.ptr : 0, pos ? positions!.ptr : 0, n, dModel, scale);
  }

  /**
   * embed (float32) or embedQ8 (q8) reading the rows from a packed matrix [vocab, dModel] (a
   * generator tied to the embedding): row id is the matrix's row id (times its scale) · scale.
   */
  embedPacked(out: Region, ids: Region, packed: Packed, pos: Region | null, positions: Region | null, n: number, dModel: number, scale: number): void {
    if (packed.k !== dModel) throw new WasmformerError('BAD_ARGUMENT', `embed: the packed table must be [vocab, ${dModel}], got [${packed.n}, ${packed.k}]`);
    this.checkEmbed(out, ids, packed.n, pos, positions, n, dModel);
    const q8 = packed.dtype === 'q8';
    span('embed', 'packed', packed.region, 0, 1, q8 ? this.packedLengthQ8(packed.n, dModel) : this.packedLength(packed.n, dModel), 0);
    this.raw[q8 ? 'embedPackedQ8' : 'embedPacked'](out.ptr, packed.region.ptr, ids.ptr, pos ? pos.ptr : 0, pos ? positions!.ptr : 0, n, dModel, scale);
  }

  private checkEmbed(out: Region, ids: Region, vocab: number, pos: Region | null, positions: Region | null, n: number, dModel: number): void {
    positive('embed', 'n', n);
    positive('embed', 'dModel', dModel);
    positive('embed', 'vocab', vocab);
    span('embed', 'ids', ids, 0, 1, n, n);
    span('embed', 'out', out, 0, n, dModel, dModel);
    inRange(this.arena.i32(), ids, n, vocab, 'id', 'the vocabulary', 'BAD_INPUT');
    if (pos) {
      if (positions === null) throw new WasmformerError('BAD_ARGUMENT', 'embed: positions are required with pos');
      span('embed', 'positions', positions, 0, 1, n, n);
      inRange(this.arena.i32(), positions, n, Math.floor(pos.length / dModel), 'position', 'the position table', 'BAD_ARGUMENT');
    }
  }

  /** The index of the largest of x[at .. at+n) (the lowest index wins a tie). */
  argmax(x: Region, at: number, n: number): number {
    positive('argmax', 'n', n);
    span('argmax', 'x', x, at, 1, n, n);
    return this.raw.argmax(addr(x, at), n);
  }
}

/** Each of the n int32 values of r lies in [0, end): else an error naming the first that does not. */
function inRange(i32: Int32Array, r: Region, n: number, end: number, what: string, of: string, code: 'BAD_INPUT' | 'BAD_ARGUMENT'): void {
  const base = index(r);
  for (let i = 0; i < n; i++) {
    const v = i32[base + i];
    if (!(v >= 0 && v < end)) throw new WasmformerError(code, `embed: ${what} ${v} at position ${i} is outside ${of} [0, ${end})`);
  }
}

function addr(r: Region, at: number): number {
  return r.ptr + at * 4;
}

function positive(kernel: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) {
    throw new WasmformerError('BAD_ARGUMENT', `${kernel}: ${name} must be a positive integer, got ${v}`);
  }
}

/** Checks that rows x cols elements with row stride ld, starting at `at`, lie inside the region. */
function span(kernel: string, name: string, r: Region, at: number, rows: number, cols: number, ld: number): void {
  const ok = Number.isInteger(at) && Number.isInteger(ld) && at >= 0 && (rows === 1 || ld >= cols) &&
    at + (rows - 1) * ld + cols <= r.length;
  if (!ok) {
    throw new WasmformerError(
      'BAD_ARGUMENT',
      `${kernel}: ${name} (${rows} x ${cols}, stride ${ld}, at ${at}) does not fit ${r.label} of ${r.length} elements`,
    );
  }
}
