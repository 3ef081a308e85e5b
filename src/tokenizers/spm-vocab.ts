import { WasmformerError } from '../errors.js';
import { ByteTrie } from './byte-trie.js';
import { PieceType, type ModelProto } from './spm-proto.js';

/** `<0x41>` for byte 0x41: the name of a byte-fallback piece (upper-case hex, as sentencepiece writes it). */
export function bytePieceName(byte: number): string {
  return `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`;
}

const BYTE_PIECE = /^<0x([0-9A-F]{2})>$/;

const encoder = new TextEncoder();

/**
 * A SentencePiece vocabulary, checked as ModelInterface::InitializePieces checks it: piece
 * look-ups by text and by UTF-8 bytes (control, unknown and byte pieces first, then normal,
 * user-defined and unused ones), each piece's type and score, the <unk> id, the user-defined
 * symbols and, with byte fallback, the id of each byte.
 */
export class SpmVocab {
  readonly pieces: readonly string[];
  readonly types: Uint8Array;
  readonly scores: Float32Array;
  readonly unkId: number;
  readonly byteFallback: boolean;
  /** normal, user-defined and unused pieces by their UTF-8: the pieces segmentation may cut */
  readonly normal: ByteTrie;
  /** how many pieces `normal` holds */
  readonly normalCount: number;
  /** the user-defined pieces, which normalization and segmentation keep whole */
  readonly userSymbols = new ByteTrie();
  /** the id of <0xXX> per byte (byte fallback only) */
  readonly byteIds = new Int32Array(256).fill(-1);
  /** control, unknown and byte pieces by their UTF-8 */
  private readonly reserved = new ByteTrie();
  /** every piece by its text, control, unknown and byte pieces taking precedence */
  private readonly byText = new Map<string, number>();

  constructor(model: ModelProto, file: string) {
    const count = model.pieces.length;
    this.pieces = model.pieces.map((p) => p.piece);
    this.types = new Uint8Array(count);
    this.scores = new Float32Array(count);
    for (let id = 0; id < count; id++) {
      this.types[id] = model.pieces[id].type;
      this.scores[id] = model.pieces[id].score;
    }
    this.byteFallback = model.trainerSpec.byteFallback;
    this.normal = new ByteTrie(model.pieces.reduce((n, p) => n + p.piece.length, 0));
    let unkId = -1;
    let normalCount = 0;
    let scratch = new Uint8Array(64);
    for (let id = 0; id < count; id++) {
      const bad = (why: string) => new WasmformerError('BAD_FILE', `${file}: pieces[${id}]: ${why}`);
      const piece = this.pieces[id];
      const type = this.types[id];
      if (piece === '') throw bad('the piece is empty');
      if (scratch.length < 3 * piece.length) scratch = new Uint8Array(3 * piece.length);
      const n = encoder.encodeInto(piece, scratch).written;
      const isNormal = type === PieceType.normal || type === PieceType.userDefined || type === PieceType.unused;
      const trie = isNormal ? this.normal : this.reserved;
      const first = trie.add(scratch, id, 0, n);
      if (first >= 0) throw bad(`${JSON.stringify(piece)} is already defined (id ${first})`);
      if (isNormal) normalCount++;
      if (type === PieceType.userDefined) this.userSymbols.add(scratch, id, 0, n);
      if (type === PieceType.unknown) {
        if (unkId >= 0) throw bad(`a second unknown piece (the first is id ${unkId})`);
        unkId = id;
      }
      if (type === PieceType.byte) this.addBytePiece(id, bad);
      if (!isNormal || !this.byText.has(piece)) this.byText.set(piece, id);
    }
    if (unkId < 0) throw new WasmformerError('BAD_FILE', `${file}: pieces: no piece of type UNKNOWN (<unk>)`);
    this.unkId = unkId;
    this.normalCount = normalCount;
    if (this.byteFallback && this.byteIds.includes(-1)) {
      throw new WasmformerError('BAD_FILE', `${file}: trainer_spec.byte_fallback is true but pieces lack byte ${bytePieceName(this.byteIds.indexOf(-1))}`);
    }
  }

  /** The id of the piece whose UTF-8 is bytes[start, end), or the <unk> id (sentencepiece's PieceToId). */
  idOfBytes(bytes: Uint8Array, start: number, end: number): number {
    const reserved = this.reserved.find(bytes, start, end);
    if (reserved >= 0) return reserved;
    const normal = this.normal.find(bytes, start, end);
    return normal >= 0 ? normal : this.unkId;
  }

  /** The id of a piece, or the <unk> id. */
  pieceToId(piece: string): number {
    return this.byText.get(piece) ?? this.unkId;
  }

  /** The byte a byte piece stands for, or -1 when `piece` is not named like one. */
  static pieceToByte(piece: string): number {
    const m = BYTE_PIECE.exec(piece);
    return m ? parseInt(m[1], 16) : -1;
  }

  private addBytePiece(id: number, bad: (why: string) => WasmformerError): void {
    if (!this.byteFallback) throw bad(`byte piece ${JSON.stringify(this.pieces[id])} although trainer_spec.byte_fallback is false`);
    const byte = SpmVocab.pieceToByte(this.pieces[id]);
    if (byte < 0) throw bad(`${JSON.stringify(this.pieces[id])} is of type BYTE but not named <0xXX>`);
    this.byteIds[byte] = id;
  }
}

/** A segmentation of normalized text: piece i is bytes [ends[i - 1] (0 for the first), ends[i]) with id ids[i]. */
export interface Segmentation {
  ends: number[];
  ids: number[];
}

/** A segmentation algorithm over one vocabulary (unigram, BPE, word, char). */
export interface SegmentModel {
  segment(normalized: Uint8Array): Segmentation;
}
