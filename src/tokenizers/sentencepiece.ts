import { WasmformerError } from '../errors.js';
import { describe } from '../io/describe.js';
import { BpeModel } from './bpe.js';
import { CharsMap } from './charsmap.js';
import { Normalizer } from './normalizer.js';
import { ModelType, PieceType, parseModelProto, type ModelProto, type NormalizerSpec } from './spm-proto.js';
import { bytePieceName, SpmVocab, type SegmentModel } from './spm-vocab.js';
import { UnigramModel } from './unigram.js';
import { fromUtf8, textToUtf8, utf8, validCharLen } from './utf8.js';
import { CharModel, WordModel } from './word-char.js';

const SPACE = '\u2581';

/** Encoded text: the pieces and their ids, one each. */
export interface Encoding {
  pieces: string[];
  ids: number[];
}

/**
 * A SentencePiece model read from its `.spm` file (a serialized ModelProto), encoding and
 * decoding as google/sentencepiece's SentencePieceProcessor does with its default options:
 * normalize, segment (unigram, BPE, word or char), merge runs of unknown pieces (or, with byte
 * fallback, spell them as <0xXX> byte pieces); decode back to text with byte pieces reassembled
 * as UTF-8, U+2581 as spaces, the dummy prefix's space removed and the denormalizer applied.
 */
export class SentencePieceProcessor {
  private readonly vocab: SpmVocab;
  private readonly normalizer: Normalizer;
  private readonly denormalizer: Normalizer | null;
  private readonly model: SegmentModel;

  private constructor(
    private readonly proto: ModelProto,
    private readonly file: string,
  ) {
    this.vocab = new SpmVocab(proto, file);
    const { normalizerSpec, denormalizerSpec, trainerSpec } = proto;
    const charsMap = charsMapOf(normalizerSpec, `${file}: normalizer_spec.precompiled_charsmap`);
    this.normalizer = new Normalizer(normalizerSpec, charsMap, trainerSpec.treatWhitespaceAsSuffix, this.vocab.userSymbols);
    this.denormalizer = denormalizerSpec
      ? new Normalizer(denormalizerSpec, charsMapOf(denormalizerSpec, `${file}: denormalizer_spec.precompiled_charsmap`), false, null)
      : null;
    this.model = segmentModel(this.vocab, trainerSpec.modelType, file);
  }

  /** Reads a `.spm` file; every problem with it is a BAD_FILE error that starts with `file`. */
  static fromBytes(bytes: Uint8Array, file = 'model.spm'): SentencePieceProcessor {
    if (!(bytes instanceof Uint8Array)) {
      throw new WasmformerError('BAD_ARGUMENT', `${file}: expected the file's bytes as a Uint8Array, got ${describe(bytes)}`);
    }
    return new SentencePieceProcessor(parseModelProto(bytes, file), file);
  }

  /** The number of pieces (ids are 0 to size - 1). */
  get size(): number {
    return this.vocab.pieces.length;
  }

  /** normalizer_spec.name: the rule set the charsmap was compiled from ("nmt_nfkc", "identity", ...). */
  get normalizerName(): string {
    return this.proto.normalizerSpec.name;
  }

  /** The id of the <unk> piece (sentencepiece's unk_id()). */
  get unkId(): number {
    return this.reservedId(this.proto.trainerSpec.unkPiece || '<unk>', PieceType.unknown);
  }

  /** The id of the <s> piece, or -1 when the model has none. */
  get bosId(): number {
    return this.reservedId(this.proto.trainerSpec.bosPiece || '<s>', PieceType.control);
  }

  /** The id of the </s> piece, or -1 when the model has none. */
  get eosId(): number {
    return this.reservedId(this.proto.trainerSpec.eosPiece || '</s>', PieceType.control);
  }

  /** The id of the <pad> piece, or -1 when the model has none. */
  get padId(): number {
    return this.reservedId(this.proto.trainerSpec.padPiece || '<pad>', PieceType.control);
  }

  /** The id of a piece; a string that is no piece is <unk>'s id. */
  pieceToId(piece: string): number {
    if (typeof piece !== 'string') throw new WasmformerError('BAD_ARGUMENT', `piece must be a string, got ${describe(piece)}`);
    return this.vocab.pieceToId(piece);
  }

  /** The piece of an id; an id outside [0, size) is a BAD_INPUT error. */
  idToPiece(id: number): string {
    this.checkId(id, 0);
    return this.vocab.pieces[id];
  }

  /** The normalized text the pieces are cut from (U+2581 for spaces), as sentencepiece's normalize(). */
  normalize(text: string): string {
    return fromUtf8(this.normalizer.normalize(textToUtf8(text, 'text')));
  }

  /** The pieces of a text (sentencepiece's encode(text, out_type=str)). */
  encodePieces(text: string): string[] {
    return this.encode(text).pieces;
  }

  /** The ids of a text (sentencepiece's encode(text)). */
  encodeIds(text: string): number[] {
    return this.encode(text).ids;
  }

  /** The pieces and ids of a text at once. */
  encode(text: string): Encoding {
    const normalized = this.normalizer.normalize(textToUtf8(text, 'text'));
    const out: Encoding = { pieces: [], ids: [] };
    if (normalized.length === 0) return out;
    const { ends, ids } = this.model.segment(normalized);
    let prevUnknown = false;
    for (let i = 0, start = 0; i < ids.length; start = ends[i++]) {
      const id = ids[i];
      const type = this.vocab.types[id];
      if (type === PieceType.control) throw this.controlInText(id);
      const isUnknown = type === PieceType.unknown;
      if (isUnknown && this.vocab.byteFallback) this.pushBytes(normalized, start, ends[i], out);
      else if (isUnknown && prevUnknown) out.pieces[out.pieces.length - 1] += fromUtf8(normalized.subarray(start, ends[i]));
      else {
        out.pieces.push(isUnknown ? fromUtf8(normalized.subarray(start, ends[i])) : this.vocab.pieces[id]);
        out.ids.push(id);
      }
      prevUnknown = isUnknown;
    }
    return out;
  }

  /** The text of pieces (sentencepiece's decode_pieces); a string that is no piece stands for itself. */
  decodePieces(pieces: readonly string[]): string {
    if (!Array.isArray(pieces) || !pieces.every((p) => typeof p === 'string')) {
      throw new WasmformerError('BAD_ARGUMENT', `pieces must be an array of strings, got ${describe(pieces)}`);
    }
    return this.decodeWithIds(pieces, pieces.map((p) => this.vocab.pieceToId(p)));
  }

  /**
   * The text of ids (sentencepiece's decode: each id's piece, decoded as decodePieces does); an
   * id outside [0, size) is a BAD_INPUT error.
   */
  decodeIds(ids: ArrayLike<number>): string {
    if (typeof ids !== 'object' || ids === null || typeof ids.length !== 'number') {
      throw new WasmformerError('BAD_ARGUMENT', `ids must be an array of token ids, got ${describe(ids)}`);
    }
    const list = Array.from(ids);
    list.forEach((id, i) => this.checkId(id, i));
    return this.decodePieces(list.map((id) => this.vocab.pieces[id]));
  }

  private decodeWithIds(pieces: readonly string[], ids: readonly number[]): string {
    let text = '';
    let bytes: number[] = [];
    let atStart = true; // no visible text yet: a leading U+2581 is the dummy prefix's
    let consumedSpace = false;
    for (let i = 0; i < ids.length; i++) {
      if (this.vocab.types[ids[i]] === PieceType.byte) {
        bytes.push(SpmVocab.pieceToByte(pieces[i]));
        continue;
      }
      text += bytesToText(bytes);
      bytes = [];
      if (consumedSpace || text !== '') atStart = false;
      const [surface, consumed] = this.surface(pieces[i], ids[i], atStart);
      text += surface;
      consumedSpace = consumed;
    }
    text += bytesToText(bytes);
    return this.denormalizer ? fromUtf8(this.denormalizer.normalize(utf8(text))) : text;
  }

  /** What one non-byte piece writes, and whether it consumed the dummy prefix's space. */
  private surface(piece: string, id: number, atStart: boolean): [string, boolean] {
    const type = this.vocab.types[id];
    if (type === PieceType.control) return ['', false];
    if (type === PieceType.unknown) return [this.vocab.pieces[id] === piece ? this.proto.trainerSpec.unkSurface : piece, false];
    const spec = this.proto.normalizerSpec;
    let consumed = false;
    if (atStart && (spec.addDummyPrefix || spec.removeExtraWhitespaces) && piece.startsWith(SPACE)) {
      piece = piece.slice(1);
      // Removing extra whitespace removes every leading space, so the next piece may lose one too.
      consumed = !spec.removeExtraWhitespaces;
    }
    return [piece.replaceAll(SPACE, ' '), consumed];
  }

  /** Spells an unknown piece as its UTF-8 bytes' pieces. */
  private pushBytes(normalized: Uint8Array, start: number, end: number, out: Encoding): void {
    for (let k = start; k < end; k++) {
      out.pieces.push(bytePieceName(normalized[k]));
      out.ids.push(this.vocab.byteIds[normalized[k]]);
    }
  }

  /** The id of `piece` if it is of `type`, else -1 (how sentencepiece finds <unk>, <s>, </s>, <pad>). */
  private reservedId(piece: string, type: number): number {
    const id = this.vocab.pieceToId(piece);
    return this.vocab.types[id] === type ? id : -1;
  }

  private checkId(id: unknown, index: number): void {
    if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= this.size) {
      throw new WasmformerError('BAD_INPUT', `${this.file}: id ${describe(id)} at position ${index} is outside the vocabulary [0, ${this.size})`);
    }
  }

  /** sentencepiece fails when segmentation yields a control piece (its text would be lost). */
  private controlInText(id: number): WasmformerError {
    return new WasmformerError('BAD_INPUT', `${this.file}: the text contains the control piece ${JSON.stringify(this.vocab.pieces[id])}, which sentencepiece cannot encode either`);
  }
}

/** The charsmap of a normalizer spec, or null when it has none (no rules: the identity). */
function charsMapOf(spec: NormalizerSpec, where: string): CharsMap | null {
  return spec.precompiledCharsmap.length === 0 ? null : CharsMap.parse(spec.precompiledCharsmap, where);
}

function segmentModel(vocab: SpmVocab, type: number, file: string): SegmentModel {
  if (type === ModelType.bpe) return new BpeModel(vocab);
  if (type === ModelType.word) return new WordModel(vocab);
  if (type === ModelType.char) return new CharModel(vocab);
  if (vocab.normalCount === 0) throw new WasmformerError('BAD_FILE', `${file}: pieces: a unigram model needs at least one normal, user-defined or unused piece`);
  return new UnigramModel(vocab);
}

/** Byte pieces' bytes as text: each valid UTF-8 character as itself, each other byte as U+FFFD. */
function bytesToText(bytes: number[]): string {
  if (bytes.length === 0) return '';
  const buf = Uint8Array.from(bytes);
  let text = '';
  for (let pos = 0; pos < buf.length; ) {
    const n = validCharLen(buf, pos, buf.length);
    text += n === 0 ? '\ufffd' : fromUtf8(buf.subarray(pos, pos + n));
    pos += n || 1;
  }
  return text;
}
