import { ProtoReader, WIRE } from './protobuf.js';

/** A piece's type: sentencepiece_model.proto's ModelProto.SentencePiece.Type. */
export const PieceType = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

/** The segmentation algorithm: TrainerSpec.ModelType. */
export const ModelType = { unigram: 1, bpe: 2, word: 3, char: 4 } as const;

/** One vocabulary entry; its id is its index. */
export interface Piece {
  piece: string;
  score: number;
  type: number;
}

/** The TrainerSpec fields that encoding and decoding read (the rest only matter to training). */
export interface TrainerSpec {
  modelType: number;
  byteFallback: boolean;
  treatWhitespaceAsSuffix: boolean;
  unkPiece: string;
  bosPiece: string;
  eosPiece: string;
  padPiece: string;
  /** what decoding writes for the <unk> piece itself */
  unkSurface: string;
}

/** A NormalizerSpec (the model's normalizer, or the denormalizer decoding applies). */
export interface NormalizerSpec {
  name: string;
  /** the compiled rules: a trie size, a Darts double array, the replacement strings (empty: none) */
  precompiledCharsmap: Uint8Array;
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
}

/** A parsed `.spm` file: sentencepiece's ModelProto with proto2's defaults filled in. */
export interface ModelProto {
  pieces: Piece[];
  trainerSpec: TrainerSpec;
  normalizerSpec: NormalizerSpec;
  /** present only when it has a charsmap, as sentencepiece only then builds a denormalizer */
  denormalizerSpec: NormalizerSpec | null;
}

/**
 * Parses a serialized ModelProto. Unknown fields, and known fields of an unexpected wire type,
 * are skipped as protobuf does; an enum value outside its enum leaves the field at its default
 * (proto2's closed enums). A malformed file is a BAD_FILE error naming `file` and the message.
 */
export function parseModelProto(bytes: Uint8Array, file: string): ModelProto {
  const model: ModelProto = {
    pieces: [],
    trainerSpec: {
      modelType: ModelType.unigram,
      byteFallback: false,
      treatWhitespaceAsSuffix: false,
      unkPiece: '<unk>',
      bosPiece: '<s>',
      eosPiece: '</s>',
      padPiece: '<pad>',
      unkSurface: ' \u2047 ',
    },
    normalizerSpec: defaultNormalizerSpec(),
    denormalizerSpec: null,
  };
  let denormalizer: NormalizerSpec | null = null;
  const r = new ProtoReader(bytes, file);
  while (r.next()) {
    if (r.wire !== WIRE.bytes) r.skip();
    else if (r.field === 1) model.pieces.push(readPiece(r.message(`pieces[${model.pieces.length}]`)));
    else if (r.field === 2) readTrainerSpec(r.message('trainer_spec'), model.trainerSpec);
    else if (r.field === 3) readNormalizerSpec(r.message('normalizer_spec'), model.normalizerSpec);
    else if (r.field === 5) readNormalizerSpec(r.message('denormalizer_spec'), (denormalizer ??= defaultNormalizerSpec()));
    else r.skip();
  }
  if (denormalizer && denormalizer.precompiledCharsmap.length > 0) model.denormalizerSpec = denormalizer;
  return model;
}

function defaultNormalizerSpec(): NormalizerSpec {
  return { name: '', precompiledCharsmap: new Uint8Array(0), addDummyPrefix: true, removeExtraWhitespaces: true, escapeWhitespaces: true };
}

function readPiece(r: ProtoReader): Piece {
  const piece: Piece = { piece: '', score: 0, type: PieceType.normal };
  while (r.next()) {
    if (r.field === 1 && r.wire === WIRE.bytes) piece.piece = r.string();
    else if (r.field === 2 && r.wire === WIRE.fixed32) piece.score = r.float();
    else if (r.field === 3 && r.wire === WIRE.varint) piece.type = enumValue(r.int32(), 1, 6, piece.type);
    else r.skip();
  }
  return piece;
}

/** Merges a TrainerSpec occurrence into `spec` (a repeated embedded message merges, in protobuf). */
function readTrainerSpec(r: ProtoReader, spec: TrainerSpec): void {
  while (r.next()) {
    const f = r.field;
    if (r.wire === WIRE.varint) {
      if (f === 3) spec.modelType = enumValue(r.int32(), 1, 4, spec.modelType);
      else if (f === 35) spec.byteFallback = r.bool();
      else if (f === 24) spec.treatWhitespaceAsSuffix = r.bool();
      else r.skip();
    } else if (r.wire === WIRE.bytes) {
      if (f === 45) spec.unkPiece = r.string();
      else if (f === 46) spec.bosPiece = r.string();
      else if (f === 47) spec.eosPiece = r.string();
      else if (f === 48) spec.padPiece = r.string();
      else if (f === 44) spec.unkSurface = r.string();
      else r.skip();
    } else r.skip();
  }
}

function readNormalizerSpec(r: ProtoReader, spec: NormalizerSpec): void {
  while (r.next()) {
    const f = r.field;
    if (r.wire === WIRE.bytes && f === 1) spec.name = r.string();
    else if (r.wire === WIRE.bytes && f === 2) spec.precompiledCharsmap = r.bytes();
    else if (r.wire === WIRE.varint && f === 3) spec.addDummyPrefix = r.bool();
    else if (r.wire === WIRE.varint && f === 4) spec.removeExtraWhitespaces = r.bool();
    else if (r.wire === WIRE.varint && f === 5) spec.escapeWhitespaces = r.bool();
    else r.skip();
  }
}

/** A closed enum's value, or `current` when it is not one of the enum's (protobuf keeps it as an unknown field). */
function enumValue(value: number, min: number, max: number, current: number): number {
  return value >= min && value <= max ? value : current;
}
