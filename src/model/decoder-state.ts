import type { Heap, Region } from '../runtime/index.js';
import { index } from '../runtime/index.js';

/**
 * One source of a decoding: every decoder layer's cross-attention keys and values of each of its
 * positions (computed once), and which positions cross-attention sees (the unpadded ones).
 */
export interface Source {
  readonly length: number;
  readonly block: Region; // [length, layers, 2, dModel]
  /** Absolute element offsets of the rows of the positions attended to. */
  readonly keys: Int32Array;
  /** Those positions, in order (to place attention weights at). */
  readonly positions: readonly number[];
}

/**
 * One row of a decoding (a hypothesis of a beam, a sentence of a batch): its state and source,
 * and for each target position so far the absolute element offset of the row holding that
 * position's keys and values (every layer's). Rows that share a past share those rows: a beam's
 * new hypotheses copy their parent's offsets, never its keys.
 */
export class DecoderRow {
  keys: Int32Array;
  length = 0;

  constructor(
    readonly state: DecoderState,
    readonly source: Source,
    capacity = 16,
  ) {
    this.keys = new Int32Array(capacity);
  }

  /** A row with this one's past, for a hypothesis that extends it. */
  fork(): DecoderRow {
    const row = new DecoderRow(this.state, this.source, this.keys.length);
    row.keys.set(this.keys.subarray(0, this.length));
    row.length = this.length;
    return row;
  }

  /** Appends the offset of a new position's row. */
  push(offset: number): void {
    if (this.length === this.keys.length) {
      const grown = new Int32Array(2 * this.keys.length);
      grown.set(this.keys);
      this.keys = grown;
    }
    this.keys[this.length++] = offset;
  }

  /** Forgets positions from `length` on (the step API rewinds so). */
  truncate(length: number): void {
    this.length = Math.min(this.length, length);
  }
}

/** Rows per slab: positions' keys and values are handed out from slabs of at least this many. */
const SLAB_ROWS = 64;

/**
 * The state of one decoding, whatever its search: its sources and the blocks holding every
 * position's keys and values, on the model's heap. A search owns it (and its DecoderRows);
 * layers read it through tables and keep nothing. release() gives its memory back.
 */
export class DecoderState {
  readonly sources: Source[] = [];
  private readonly blocks: Region[] = [];
  private slab: Region | null = null;
  private slabUsed = 0; // rows of the current slab handed out

  constructor(
    private readonly heap: Heap,
    /** Floats of one position's keys and values in every decoder layer: layers · 2 · dModel. */
    readonly rowFloats: number,
  ) {}

  /** A source of `length` positions, those with `attended` true seen by cross-attention; its keys and values are to be written into its block. */
  addSource(length: number, attended: readonly boolean[]): Source {
    const block = this.own(this.heap.alloc(length * this.rowFloats, 'cross-attention keys and values'));
    const positions = attended.flatMap((seen, j) => (seen ? [j] : []));
    const keys = Int32Array.from(positions, (j) => index(block) + j * this.rowFloats);
    const source = { length, block, keys, positions };
    this.sources.push(source);
    return source;
  }

  /**
   * Keeps n positions' keys and values, the rows at element offset `from` on (a step's scratch,
   * rowFloats apart), in rows of its own: returns the absolute element offset of the first.
   */
  keep(from: number, n: number): number {
    if (this.slab === null || this.slabUsed + n > this.slab.length / this.rowFloats) {
      this.slab = this.own(this.heap.alloc(Math.max(SLAB_ROWS, n) * this.rowFloats, 'decoder keys and values'));
      this.slabUsed = 0;
    }
    const to = index(this.slab) + this.slabUsed * this.rowFloats;
    this.heap.arena.f32().copyWithin(to, from, from + n * this.rowFloats);
    this.slabUsed += n;
    return to;
  }

  /** Frees every block; the state is empty after. */
  release(): void {
    for (const block of this.blocks) this.heap.free(block);
    this.blocks.length = 0;
    this.sources.length = 0;
    this.slab = null;
  }

  private own(block: Region): Region {
    this.blocks.push(block);
    return block;
  }
}
