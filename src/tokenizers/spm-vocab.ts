import { WasmformerError } from '../errors.js';
import { ByteTrie } from './byte-trie.js';
import { PieceType, type ModelProto } from './spm-proto.js';
import { byteKey, utf8 } from './utf8.js';

/** `<0x41>` for byte 0x41: the name of a byte-fallback piece (upper-case hex, as sentencepiece writes it). */
export function bytePieceName(byte: number): string {
  return `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`;
}

const BYTE_PIECE = /^<0x([0-9A-F]{2})>$/;

/**
 * A SentencePiece vocabulary, checked as ModelInterface::InitializePieces checks it: piece
 * look-ups by byte string (control, unknown and byte pieces first, then normal, user-defined
 * and unused ones), each piece's type and score, the <unk> id, the user-defined symbols and,
 * with byte fallback, the id of each byte.
 */
export class SpmVocab {
  readonly pieces: readonly string[];
  /** each piece as UTF-8 */
  readonly bytes: readonly Uint8Array[];
  readonly types: Uint8Array;
  readonly scores: Float32Array;
  readonly unkId: number;
  readonly byteFallback: boolean;
  /** the user-defined pieces, which normalization and segmentation keep whole */
  readonly userSymbols = new ByteTrie();
  /** the id of <0xXX> per byte (byte fallback only) */
  readonly byteIds = new Int32Array(256).fill(-1);
  /** normal, user-defined and unused pieces by byte key */
  readonly normal = new Map<string, number>();
  /** control, unknown and byte pieces by byte key */
  private readonly reserved = new Map<string, number>();
  /** every piece by its text, control, unknown and byte pieces taking precedence */
  private readonly byText = new Map<string, number>();

  constructor(model: ModelProto, file: string) {
    const n = model.pieces.length;
    this.pieces = model.pieces.map((p) => p.piece);
    this.bytes = this.pieces.map(utf8);
    this.types = Uint8Array.from(model.pieces, (p) => p.type);
    this.scores = Float32Array.from(model.pieces, (p) => p.score);
    this.byteFallback = model.trainerSpec.byteFallback;
    let unkId = -1;
    for (let id = 0; id < n; id++) {
      const where = `${file}: pieces[${id}]`;
      const piece = this.pieces[id];
      const type = this.types[id];
      if (piece === '') throw new WasmformerError('BAD_FILE', `${where}: the piece is empty`);
      const isNormal = type === PieceType.normal || type === PieceType.userDefined || type === PieceType.unused;
      const map = isNormal ? this.normal : this.reserved;
      const key = byteKey(this.bytes[id]);
      if (map.has(key)) throw new WasmformerError('BAD_FILE', `${where}: ${JSON.stringify(piece)} is already defined (id ${map.get(key)})`);
      map.set(key, id);
      if (type === PieceType.userDefined) this.userSymbols.insert(this.bytes[id], id);
      if (type === PieceType.unknown) {
        if (unkId >= 0) throw new WasmformerError('BAD_FILE', `${where}: a second unknown piece (the first is id ${unkId})`);
        unkId = id;
      }
      if (type === PieceType.byte) this.addBytePiece(id, where);
    }
    if (unkId < 0) throw new WasmformerError('BAD_FILE', `${file}: pieces: no piece of type UNKNOWN (<unk>)`);
    for (const map of [this.normal, this.reserved]) for (const id of map.values()) this.byText.set(this.pieces[id], id);
    this.unkId = unkId;
    if (this.byteFallback && this.byteIds.includes(-1)) {
      throw new WasmformerError('BAD_FILE', `${file}: trainer_spec.byte_fallback is true but pieces lack byte ${bytePieceName(this.byteIds.indexOf(-1))}`);
    }
  }

  /** The id of the piece whose UTF-8 is `key` (a byteKey), or the <unk> id. */
  idOfKey(key: string): number {
    return this.reserved.get(key) ?? this.normal.get(key) ?? this.unkId;
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

  private addBytePiece(id: number, where: string): void {
    if (!this.byteFallback) throw new WasmformerError('BAD_FILE', `${where}: byte piece ${JSON.stringify(this.pieces[id])} although trainer_spec.byte_fallback is false`);
    const byte = SpmVocab.pieceToByte(this.pieces[id]);
    if (byte < 0) throw new WasmformerError('BAD_FILE', `${where}: ${JSON.stringify(this.pieces[id])} is of type BYTE but not named <0xXX>`);
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
