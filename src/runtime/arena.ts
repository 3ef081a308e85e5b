import { WasmformerError } from '../errors.js';

const PAGE = 65536;
const ALIGN = 16;

/** A run of 4-byte elements (float32 or int32) in the linear memory, 16-byte aligned. */
export interface Region {
  readonly ptr: number; // byte offset
  readonly length: number; // elements
  readonly label: string; // what it holds, named in errors
}

/**
 * The one linear memory, owned by JS and shared with the kernels: hands out aligned regions
 * from a bump pointer and grows the memory when it must. Views are renewed after a grow, so a
 * caller never keeps a Float32Array across one: ask `f32()` again after any allocation.
 */
export class Arena {
  readonly memory: WebAssembly.Memory;
  private top: number;
  private dirty: number; // bytes at and past this offset were never handed out: still zero
  private buffer: ArrayBuffer | SharedArrayBuffer | null = null;
  private f32View = new Float32Array(0);
  private i32View = new Int32Array(0);
  private u8View = new Uint8Array(0);
  private sealedBy: string | null = null; // what took the memory past the last region

  constructor(memory: WebAssembly.Memory, base: number) {
    this.memory = memory;
    this.top = align(base);
    this.dirty = this.top;
  }

  /** Bytes handed out so far, including the module's static data below the first region. */
  get used(): number {
    return this.top;
  }

  /** A new region of `length` elements; zero-filled (fresh pages, or cleared after a reset). */
  alloc(length: number, label: string): Region {
    if (this.sealedBy !== null) {
      throw new WasmformerError('BAD_ARGUMENT', `cannot allocate ${label}: the memory past the arena's last region belongs to ${this.sealedBy}`);
    }
    if (!Number.isInteger(length) || length < 0) {
      throw new WasmformerError('BAD_ARGUMENT', `cannot allocate ${length} elements for ${label}`);
    }
    const ptr = this.top;
    const end = align(ptr + length * 4);
    this.reserve(end, label);
    this.top = end;
    const region = { ptr, length, label };
    // Fresh pages are zero; only bytes handed out before a reset need clearing.
    if (ptr < this.dirty) this.u8().fill(0, ptr, Math.min(end, this.dirty));
    this.dirty = Math.max(this.dirty, end);
    return region;
  }

  /** Grows the memory so that bytes [0, end) exist, for `label`. */
  reserve(end: number, label: string): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    try {
      this.memory.grow(Math.ceil((end - have) / PAGE));
    } catch {
      throw new WasmformerError('OUT_OF_MEMORY', `cannot grow WebAssembly memory to ${end} bytes for ${label}`);
    }
  }

  /** Hands the memory past the last region to `owner` (a Heap): later allocations here are errors, as they would overlap its blocks. */
  seal(owner: string): void {
    this.sealedBy = owner;
  }

  /** The allocation point, to hand to `reset` when temporary regions are no longer needed. */
  mark(): number {
    return this.top;
  }

  /** Frees every region allocated after `mark` was taken. */
  reset(mark: number): void {
    this.top = mark;
  }

  f32(): Float32Array {
    this.renew();
    return this.f32View;
  }

  i32(): Int32Array {
    this.renew();
    return this.i32View;
  }

  u8(): Uint8Array {
    this.renew();
    return this.u8View;
  }

  /** A float view of one region (allocates a view object: not for the decoding loop). */
  view(region: Region): Float32Array {
    return this.f32().subarray(index(region), index(region) + region.length);
  }

  /** region[at, at + values.length) = values as int32; a BAD_ARGUMENT error unless they fit. */
  writeI32(region: Region, at: number, values: ArrayLike<number>): void {
    put(this.i32(), region, at, values);
  }

  /** region[at] = value as int32 (one token id, in the decoding loop: nothing allocated). */
  storeI32(region: Region, at: number, value: number): void {
    fits(region, at, 1);
    this.i32()[index(region) + at] = value;
  }

  /** region[at, at + values.length) = values as float32; a BAD_ARGUMENT error unless they fit. */
  writeF32(region: Region, at: number, values: ArrayLike<number>): void {
    put(this.f32(), region, at, values);
  }

  /** A view of region[at, at + n) (valid until the memory grows); a BAD_ARGUMENT error unless it fits. */
  readF32(region: Region, at: number, n: number): Float32Array {
    fits(region, at, n);
    return this.f32().subarray(index(region) + at, index(region) + at + n);
  }

  private renew(): void {
    const buffer = this.memory.buffer;
    if (buffer === this.buffer) return;
    this.buffer = buffer;
    this.f32View = new Float32Array(buffer);
    this.i32View = new Int32Array(buffer);
    this.u8View = new Uint8Array(buffer);
  }
}

/** The element index of a region's first element: unsigned, as offsets pass 2 GiB. */
export function index(region: Region): number {
  return region.ptr >>> 2;
}

function put(view: Int32Array | Float32Array, region: Region, at: number, values: ArrayLike<number>): void {
  fits(region, at, values.length);
  const base = index(region) + at;
  for (let i = 0; i < values.length; i++) view[base + i] = values[i];
}

function fits(region: Region, at: number, n: number): void {
  if (!(Number.isInteger(at) && at >= 0 && at + n <= region.length)) {
    throw new WasmformerError('BAD_ARGUMENT', `${n} elements at ${at} do not fit ${region.label} of ${region.length} elements`);
  }
}

function align(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}
