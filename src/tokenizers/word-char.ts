import type { Segmentation, SegmentModel, SpmVocab } from './spm-vocab.js';
import { charLen } from './utf8.js';

/** Whether text[pos] starts U+2581, the escaped space. */
function isSpaceSymbol(text: Uint8Array, pos: number): boolean {
  return text[pos] === 0xe2 && text[pos + 1] === 0x96 && text[pos + 2] === 0x81;
}

/** Appends the piece text[from, to) with its id (or <unk>'s). */
function emit(vocab: SpmVocab, text: Uint8Array, from: number, to: number, out: Segmentation): void {
  out.ends.push(to);
  out.ids.push(vocab.idOfBytes(text, from, to));
}

/** sentencepiece's WORD model: one piece per word, a word starting at each escaped space. */
export class WordModel implements SegmentModel {
  constructor(private readonly vocab: SpmVocab) {}

  segment(text: Uint8Array): Segmentation {
    const out: Segmentation = { ends: [], ids: [] };
    let from = 0;
    for (let pos = 0; pos < text.length; ) {
      const len = charLen(text, pos);
      if (pos > from && len === 3 && isSpaceSymbol(text, pos)) {
        emit(this.vocab, text, from, pos, out);
        from = pos;
      }
      pos += len;
    }
    if (text.length > from) emit(this.vocab, text, from, text.length, out);
    return out;
  }
}

/** sentencepiece's CHAR model: one piece per character (a user-defined symbol stays whole). */
export class CharModel implements SegmentModel {
  constructor(private readonly vocab: SpmVocab) {}

  segment(text: Uint8Array): Segmentation {
    const out: Segmentation = { ends: [], ids: [] };
    for (let pos = 0; pos < text.length; ) {
      const symbol = this.vocab.userSymbols.longestPrefix(text, pos, text.length);
      const len = symbol || charLen(text, pos);
      emit(this.vocab, text, pos, pos + len, out);
      pos += len;
    }
    return out;
  }
}
