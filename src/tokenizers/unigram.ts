import { PieceType } from './spm-proto.js';
import type { Segmentation, SegmentModel, SpmVocab } from './spm-vocab.js';
import { charLen } from './utf8.js';

/** sentencepiece's penalty of an unknown character below the lowest piece score. */
const UNK_PENALTY = 10;
const FLT_MAX = 3.4028234663852886e38;
/** A user-defined piece of n bytes scores 0.1 n - 0.1 (float32), whatever the other scores. */
const USER_BONUS = Math.fround(0.1);

/**
 * The unigram language model's segmentation: the Viterbi best path over the lattice of every
 * piece that matches at every character, as sentencepiece's optimized encoder computes it
 * (byte positions, scores summed in float32, the first of equal paths kept). A character no
 * piece covers is an <unk> node scored 10 below the lowest piece. A user-defined piece of n bytes
 * scores 0.1 n - 0.1: that is what sentencepiece 0.2.2 does, measured on its lattice scores and
 * its choices among equal paths (0.2.0's source reads `n * max_score - 0.1`, with max_score the
 * highest normal score or FLT_MIN).
 */
export class UnigramModel implements SegmentModel {
  private readonly unkScore: number;

  constructor(private readonly vocab: SpmVocab) {
    let min = FLT_MAX;
    for (let id = 0; id < vocab.pieces.length; id++) {
      if (vocab.types[id] === PieceType.normal) min = Math.min(min, vocab.scores[id]);
    }
    this.unkScore = Math.fround(min - UNK_PENALTY);
  }

  segment(text: Uint8Array): Segmentation {
    const size = text.length;
    const { types, scores, unkId, normal: trie } = this.vocab;
    // The best path ending at each byte position: its score (a float32 value), where its last piece starts, that piece's id.
    const best = new Float64Array(size + 1);
    const startsAt = new Int32Array(size + 1).fill(-1);
    const lastId = new Int32Array(size + 1);
    const offer = (end: number, score: number, start: number, id: number) => {
      if (startsAt[end] === -1 || score > best[end]) {
        best[end] = Math.fround(score);
        startsAt[end] = start;
        lastId[end] = id;
      }
    };
    for (let start = 0; start < size; ) {
      const till = best[start];
      const mblen = charLen(text, start);
      let covered = false;
      for (let node = 0, k = start; k < size; k++) {
        node = trie.child(node, text[k]);
        if (node < 0) break;
        const id = trie.value(node);
        if (id < 0 || types[id] === PieceType.unused) continue;
        const length = k + 1 - start;
        const score = types[id] === PieceType.userDefined ? Math.fround(Math.fround(length * USER_BONUS) - USER_BONUS) : scores[id];
        offer(k + 1, Math.fround(score + till), start, id);
        if (length === mblen) covered = true;
      }
      if (!covered) offer(start + mblen, Math.fround(this.unkScore + till), start, unkId);
      start += mblen;
    }
    return backtrack(startsAt, lastId);
  }
}

/** The pieces of the best path, first to last. */
function backtrack(startsAt: Int32Array, lastId: Int32Array): Segmentation {
  const ends: number[] = [];
  const ids: number[] = [];
  for (let end = startsAt.length - 1; end > 0; end = startsAt[end]) {
    ends.push(end);
    ids.push(lastId[end]);
  }
  return { ends: ends.reverse(), ids: ids.reverse() };
}
