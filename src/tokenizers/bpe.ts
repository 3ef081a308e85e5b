import { PieceType } from './spm-proto.js';
import type { Segmentation, SegmentModel, SpmVocab } from './spm-vocab.js';
import { byteKey, charLen } from './utf8.js';

/** A candidate merge of the symbols `left` and `right` (adjacent when it was made) into a piece of `size` bytes. */
interface Pair {
  left: number;
  right: number;
  score: number;
  size: number;
}

/** The agenda's order: the highest score first, then the leftmost pair. */
function before(a: Pair, b: Pair): boolean {
  return a.score > b.score || (a.score === b.score && a.left < b.left);
}

/** A binary max-heap of pairs in `before` order. */
class Agenda {
  private readonly heap: Pair[] = [];

  get size(): number {
    return this.heap.length;
  }

  push(p: Pair): void {
    const h = this.heap;
    let i = h.push(p) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i], h[parent])) break;
      [h[i], h[parent]] = [h[parent], h[i]];
      i = parent;
    }
  }

  pop(): Pair {
    const h = this.heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l], h[m])) m = l;
        if (r < h.length && before(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

/**
 * sentencepiece's BPE segmentation: split into characters (a user-defined symbol stays whole and
 * is never merged), then repeatedly merge the adjacent pair that forms the highest-scoring piece
 * (the leftmost among equals); a merged piece of type UNUSED is split back into the two it was
 * made of. A symbol that is no piece is <unk>.
 */
export class BpeModel implements SegmentModel {
  constructor(private readonly vocab: SpmVocab) {}

  segment(text: Uint8Array): Segmentation {
    const { start, end, prev, next, frozen } = this.symbols(text);
    const agenda = new Agenda();
    // Unused pieces made by a merge (by their bytes), and where the two symbols they were made
    // of were: [left start, left end, right start, right end] (the last offer wins, as in sentencepiece).
    const unmerge = new Map<string, number[]>();
    const offer = (left: number, right: number) => {
      if (left < 0 || right < 0 || frozen[left] || frozen[right]) return;
      const id = this.vocab.normal.find(text, start[left], end[right]);
      if (id < 0) return;
      agenda.push({ left, right, score: this.vocab.scores[id], size: end[right] - start[left] });
      if (this.vocab.types[id] === PieceType.unused) {
        unmerge.set(byteKey(text, start[left], end[right]), [start[left], end[left], start[right], end[right]]);
      }
    };
    for (let i = 1; i < start.length; i++) offer(i - 1, i);
    while (agenda.size > 0) {
      const top = agenda.pop();
      const { left, right } = top;
      const leftSize = end[left] - start[left];
      const rightSize = end[right] - start[right];
      // A pair whose symbols changed since it was offered is stale.
      if (leftSize === 0 || rightSize === 0 || leftSize + rightSize !== top.size) continue;
      end[left] = end[right];
      next[left] = next[right];
      if (next[right] >= 0) prev[next[right]] = left;
      end[right] = start[right];
      offer(prev[left], left);
      offer(left, next[left]);
    }
    const out: Segmentation = { ends: [], ids: [] };
    let offset = 0;
    for (let i = 0; i !== -1; i = next[i]) offset = this.emit(text, start[i], end[i], offset, unmerge, out);
    return out;
  }

  /** The text as characters and user-defined symbols, linked in order. */
  private symbols(text: Uint8Array) {
    const start: number[] = [];
    const end: number[] = [];
    const frozen: boolean[] = [];
    for (let pos = 0; pos < text.length; ) {
      const symbol = this.vocab.userSymbols.longestPrefix(text, pos, text.length);
      const len = symbol || charLen(text, pos);
      start.push(pos);
      end.push(pos + len);
      frozen.push(symbol > 0);
      pos += len;
    }
    const prev = start.map((_, i) => i - 1);
    const next = start.map((_, i) => (i + 1 < start.length ? i + 1 : -1));
    return { start, end, prev, next, frozen };
  }

  /**
   * Appends the final symbol text[from, to) at `offset`, an unused piece split back into its two
   * symbols (recursively); returns the offset after it.
   */
  private emit(text: Uint8Array, from: number, to: number, offset: number, unmerge: Map<string, number[]>, out: Segmentation): number {
    const id = this.vocab.idOfBytes(text, from, to);
    const parts = this.vocab.types[id] === PieceType.unused ? unmerge.get(byteKey(text, from, to)) : undefined;
    if (!parts) {
      out.ends.push(offset + to - from);
      out.ids.push(id);
      return offset + to - from;
    }
    return this.emit(text, parts[2], parts[3], this.emit(text, parts[0], parts[1], offset, unmerge, out), unmerge, out);
  }
}
