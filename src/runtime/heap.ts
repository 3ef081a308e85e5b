import { WasmformerError } from '../errors.js';
import type { Arena, Region } from './arena.js';

const ALIGN = 16;
/** The heap grows the memory by at least this much at a time, so that a decoding's steps rarely grow it. */
const GROWTH = 4 << 20;

/**
 * The memory past the arena's last region, for what lives as long as a decoding, not as long as
 * the model: its key/value blocks, its tables. Blocks are freed in any order (a paused stream
 * keeps its own while other calls come and go), so this is a first-fit free list with
 * coalescing, its bookkeeping in JS; the memory only grows, and freed blocks are reused.
 */
export class Heap {
  private readonly start: number;
  private end: number; // bytes [start, end) belong to the heap
  private holes: { ptr: number; bytes: number }[] = []; // free blocks, sorted by ptr, never adjacent
  private readonly sizes = new Map<number, number>(); // live block -> its bytes

  constructor(readonly arena: Arena) {
    this.start = align(arena.mark());
    this.end = this.start;
    arena.seal('the heap of decodings');
  }

  /** A zero-filled block of `length` 4-byte elements; freed with free(). */
  alloc(length: number, label: string): Region {
    if (!Number.isSafeInteger(length) || length < 0) {
      throw new WasmformerError('BAD_ARGUMENT', `cannot allocate ${length} elements for ${label}`);
    }
    const bytes = Math.max(ALIGN, align(length * 4));
    let at = this.holes.findIndex((f) => f.bytes >= bytes);
    if (at < 0) at = this.grow(bytes, label);
    const block = this.holes[at];
    const ptr = block.ptr;
    if (block.bytes === bytes) this.holes.splice(at, 1);
    else this.holes[at] = { ptr: ptr + bytes, bytes: block.bytes - bytes };
    this.sizes.set(ptr, bytes);
    this.arena.u8().fill(0, ptr, ptr + bytes);
    return { ptr, length, label };
  }

  /** Returns a block to the heap; a block not allocated here (or freed already) is a BAD_ARGUMENT error. */
  free(region: Region): void {
    const bytes = this.sizes.get(region.ptr);
    if (bytes === undefined) throw new WasmformerError('BAD_ARGUMENT', `free: ${region.label} is not a live heap block`);
    this.sizes.delete(region.ptr);
    let at = this.holes.findIndex((f) => f.ptr > region.ptr);
    if (at < 0) at = this.holes.length;
    this.holes.splice(at, 0, { ptr: region.ptr, bytes });
    // Merge with the next block, then with the previous one.
    const next = this.holes[at + 1];
    if (next !== undefined && region.ptr + bytes === next.ptr) {
      this.holes[at].bytes += next.bytes;
      this.holes.splice(at + 1, 1);
    }
    const previous = this.holes[at - 1];
    if (previous !== undefined && previous.ptr + previous.bytes === region.ptr) {
      previous.bytes += this.holes[at].bytes;
      this.holes.splice(at, 1);
    }
  }

  /** Bytes in live blocks. */
  get used(): number {
    let n = 0;
    for (const bytes of this.sizes.values()) n += bytes;
    return n;
  }

  /** Grows the heap so that its last free block holds `bytes`; returns that block's index. */
  private grow(bytes: number, label: string): number {
    const last = this.holes.at(-1);
    const tail = last !== undefined && last.ptr + last.bytes === this.end ? last : null;
    const more = Math.max(GROWTH, bytes - (tail?.bytes ?? 0));
    this.arena.reserve(this.end + more, label);
    if (tail !== null) tail.bytes += more;
    else this.holes.push({ ptr: this.end, bytes: more });
    this.end += more;
    return this.holes.length - 1;
  }
}

function align(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}
