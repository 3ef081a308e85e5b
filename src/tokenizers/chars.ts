import { WasmformerError } from '../errors.js';
import { jsonObject } from '../io/config.js';

/**
 * The contents of a character-level tokenizer.json (see models/numbers/README.md):
 * one vocabulary entry per id; the entries at the special ids (pad, bos, eos, and unk in each
 * vocabulary that reaches it, as the tutorial's vocabularies share their specials) are names
 * such as "<pad>", every other entry is exactly one character (one Unicode code point).
 */
export interface CharTokenizerJSON {
  type: 'chars';
  src_vocab: string[];
  tgt_vocab: string[];
  pad_id: number;
  bos_id: number;
  eos_id: number;
  /**
   * The id that stands for any character outside src_vocab (null: such a character is an
   * error); in tgt_vocab, when it reaches that far, the id of a token decoded as its name.
   */
  unk_id: number | null;
  src_add_bos: boolean;
  src_add_eos: boolean;
}

/** Text <-> token ids, one id per character, for models trained on characters. */
export class CharTokenizer {
  readonly padId: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly unkId: number | null;
  readonly srcVocab: readonly string[];
  readonly tgtVocab: readonly string[];
  private readonly srcAddBos: boolean;
  private readonly srcAddEos: boolean;
  private readonly srcIndex: Map<string, number>;
  private readonly tgtIndex: Map<string, number>;

  private constructor(json: CharTokenizerJSON, readonly file: string) {
    this.padId = json.pad_id;
    this.bosId = json.bos_id;
    this.eosId = json.eos_id;
    this.unkId = json.unk_id;
    this.srcVocab = Object.freeze(json.src_vocab.slice());
    this.tgtVocab = Object.freeze(json.tgt_vocab.slice());
    this.srcAddBos = json.src_add_bos;
    this.srcAddEos = json.src_add_eos;
    const specials = json.unk_id === null ? [json.pad_id, json.bos_id, json.eos_id] : [json.pad_id, json.bos_id, json.eos_id, json.unk_id];
    this.srcIndex = charIndex(json.src_vocab, specials, file, 'src_vocab');
    this.tgtIndex = charIndex(json.tgt_vocab, specials, file, 'tgt_vocab');
  }

  /** Checks a parsed tokenizer.json (or its text) completely; every error is BAD_CONFIG naming file and field. */
  static fromJSON(json: unknown, file = 'tokenizer.json'): CharTokenizer {
    const bad = (field: string, why: string) => new WasmformerError('BAD_CONFIG', `${file}: "${field}" ${why}`);
    const o = jsonObject(json, file);
    if (o.type !== 'chars') throw bad('type', `must be "chars", got ${JSON.stringify(o.type)}`);
    for (const field of ['src_vocab', 'tgt_vocab']) {
      const v = o[field];
      if (!Array.isArray(v) || v.length === 0 || !v.every((s) => typeof s === 'string')) {
        throw bad(field, 'must be a non-empty array of strings');
      }
    }
    const srcSize = (o.src_vocab as string[]).length;
    const tgtSize = (o.tgt_vocab as string[]).length;
    // The special ids are shared: each must name an entry of both vocabularies.
    for (const field of ['pad_id', 'bos_id', 'eos_id']) {
      if (!isId(o[field], Math.min(srcSize, tgtSize))) {
        throw bad(field, `must be an integer id in both vocabularies (0..${Math.min(srcSize, tgtSize) - 1})`);
      }
    }
    if (new Set([o.pad_id, o.bos_id, o.eos_id]).size !== 3) throw bad('eos_id', 'pad_id, bos_id and eos_id must differ');
    if (o.unk_id === undefined) throw bad('unk_id', 'is missing (null when there is none)');
    if (o.unk_id !== null && (!isId(o.unk_id, srcSize) || [o.pad_id, o.bos_id, o.eos_id].includes(o.unk_id))) {
      throw bad('unk_id', `must be null or a source id (0..${srcSize - 1}) other than pad, bos and eos`);
    }
    for (const field of ['src_add_bos', 'src_add_eos']) {
      if (typeof o[field] !== 'boolean') throw bad(field, 'must be true or false');
    }
    return new CharTokenizer(o as unknown as CharTokenizerJSON, file);
  }

  /** The tokenizer.json this tokenizer reads back as itself. */
  toJSON(): CharTokenizerJSON {
    return {
      type: 'chars', src_vocab: [...this.srcVocab], tgt_vocab: [...this.tgtVocab], pad_id: this.padId, bos_id: this.bosId,
      eos_id: this.eosId, unk_id: this.unkId, src_add_bos: this.srcAddBos, src_add_eos: this.srcAddEos,
    };
  }

  get srcVocabSize(): number {
    return this.srcVocab.length;
  }

  get tgtVocabSize(): number {
    return this.tgtVocab.length;
  }

  /**
   * The encoder's input ids for a text: [bos]? chars [eos]? as the tokenizer says. A character
   * outside the source vocabulary becomes unk_id, or, without one, a BAD_INPUT error naming it
   * and its position (counted in characters, i.e. code points, from 0).
   */
  encode(text: string): number[] {
    const ids = this.srcAddBos ? [this.bosId] : [];
    let pos = 0;
    for (const ch of text) {
      const id = this.srcIndex.get(ch) ?? this.unkId;
      if (id === null) {
        throw new WasmformerError('BAD_INPUT', `character ${describe(ch)} at position ${pos} is not in the source vocabulary`);
      }
      ids.push(id);
      pos++;
    }
    if (this.srcAddEos) ids.push(this.eosId);
    return ids;
  }

  /** The source tokens of a text: the entries of its ids (bos and eos by their names). */
  tokenize(text: string): string[] {
    return this.encode(text).map((id) => this.srcVocab[id]);
  }

  /** A target text as ids, without bos and eos (what greedy decoding returns for it); unknown characters are BAD_INPUT. */
  encodeTarget(text: string): number[] {
    const ids: number[] = [];
    let pos = 0;
    for (const ch of text) {
      const id = this.tgtIndex.get(ch);
      if (id === undefined) {
        throw new WasmformerError('BAD_INPUT', `character ${describe(ch)} at position ${pos} is not in the target vocabulary`);
      }
      ids.push(id);
      pos++;
    }
    return ids;
  }

  /** Target ids as text: stops at the first eos, skips bos and pad; an id outside the vocabulary is BAD_INPUT. */
  decode(ids: ArrayLike<number>): string {
    let text = '';
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (id === this.eosId) break;
      if (id === this.bosId || id === this.padId) continue;
      if (!isId(id, this.tgtVocab.length)) {
        throw new WasmformerError('BAD_INPUT', `target id ${id} at position ${i} is outside the vocabulary (0..${this.tgtVocab.length - 1})`);
      }
      text += this.tgtVocab[id];
    }
    return text;
  }
}

function isId(x: unknown, size: number): x is number {
  return Number.isInteger(x) && (x as number) >= 0 && (x as number) < size;
}

/** char -> id for the non-special entries, which must be single, distinct code points. */
function charIndex(vocab: string[], specials: number[], file: string, field: string): Map<string, number> {
  const index = new Map<string, number>();
  vocab.forEach((entry, id) => {
    if (specials.includes(id)) return;
    if ([...entry].length !== 1) {
      throw new WasmformerError('BAD_CONFIG', `${file}: "${field}"[${id}] must be one character, got ${JSON.stringify(entry)}`);
    }
    if (index.has(entry)) {
      throw new WasmformerError('BAD_CONFIG', `${file}: "${field}"[${id}] repeats ${JSON.stringify(entry)} (id ${index.get(entry)})`);
    }
    index.set(entry, id);
  });
  return index;
}

/** A character for an error message: visible even when it is whitespace or a control code. */
function describe(ch: string): string {
  const code = ch.codePointAt(0)!;
  return `${JSON.stringify(ch)} (U+${code.toString(16).toUpperCase().padStart(4, '0')})`;
}
