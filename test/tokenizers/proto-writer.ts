/** A minimal protobuf writer for the tests: hand-made ModelProtos and wire-format edge cases. */
import { concat as concatChunks } from '../io/write-safetensors.js';

export type Field = Uint8Array;

export function varint(value: number | bigint): Uint8Array {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  do {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v > 0n ? b | 0x80 : b);
  } while (v > 0n);
  return Uint8Array.from(out);
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  return concatChunks(parts);
}

export function tag(field: number, wire: number): Uint8Array {
  return varint(field * 8 + wire);
}

/** A varint field (int32, enum, bool; a negative int32 takes ten bytes, as protobuf writes it). */
export function vField(field: number, value: number | bigint | boolean): Field {
  return concat(tag(field, 0), varint(typeof value === 'boolean' ? Number(value) : value));
}

/** A length-delimited field: bytes, a string (UTF-8) or an embedded message (its fields). */
export function bField(field: number, value: string | Uint8Array | Field[]): Field {
  const body = typeof value === 'string' ? new TextEncoder().encode(value) : Array.isArray(value) ? concat(...value) : value;
  return concat(tag(field, 2), varint(body.length), body);
}

/** A float field (fixed32). */
export function fField(field: number, value: number): Field {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setFloat32(0, value, true);
  return concat(tag(field, 5), b);
}

/** A fixed64 field. */
export function dField(field: number, value: number): Field {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, value, true);
  return concat(tag(field, 1), b);
}

export const TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

export interface PieceSpec {
  piece: string;
  score?: number;
  type?: number;
}

/** A ModelProto: pieces, then trainer_spec (field 2) and normalizer_spec (field 3) fields. */
export function modelProto(pieces: PieceSpec[], trainer: Field[] = [], normalizer: Field[] = [], extra: Field[] = []): Uint8Array {
  const pieceFields = pieces.map((p) => bField(1, [bField(1, p.piece), fField(2, p.score ?? 0), ...(p.type ? [vField(3, p.type)] : [])]));
  return concat(...pieceFields, bField(2, trainer), bField(3, normalizer), ...extra);
}
