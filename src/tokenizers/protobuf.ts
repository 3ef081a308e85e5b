import { WasmformerError } from '../errors.js';

/** The protobuf wire types (the low three bits of a field's tag). */
export const WIRE = { varint: 0, fixed64: 1, bytes: 2, startGroup: 3, endGroup: 4, fixed32: 5 } as const;

/** protobuf's own limit on nested messages and groups; deeper input is refused, not recursed into. */
const MAX_DEPTH = 100;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Reads one protobuf message's fields in order, without a schema: `next()` reads a tag, then
 * the caller reads its value with the method its schema names (or `skip()`s it). Every
 * malformed or truncated input is a BAD_FILE error naming the file, the message and the byte.
 */
export class ProtoReader {
  /** The field number and wire type of the tag `next()` read last. */
  field = 0;
  wire = 0;
  private pos: number;
  /** the high 32 bits of the varint read last (varint() returns the low ones) */
  private hi = 0;

  /** `file` names the file for errors; `path` the message inside it ("trainer_spec", "pieces[3]"). */
  constructor(
    private readonly buf: Uint8Array,
    private readonly file: string,
    start = 0,
    private readonly end = buf.length,
    private readonly path = '',
    private readonly depth = 0,
    private readonly view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength),
  ) {
    this.pos = start;
  }

  /** Reads the next tag; false at the end of the message. */
  next(): boolean {
    if (this.pos >= this.end) return false;
    const at = this.pos;
    this.readTag();
    if (this.wire === WIRE.endGroup) throw this.error(`an end-group tag without its group at byte ${at}`);
    return true;
  }

  /** A varint field as a JS number: exact up to 2^53, as protobuf's uint64 otherwise rounded. */
  uint64(): number {
    const lo = this.varint();
    return this.hi * 0x100000000 + lo;
  }

  /** An int32 or enum field (negative values are sign-extended to ten bytes on the wire). */
  int32(): number {
    return this.varint() | 0;
  }

  /** A bool field. */
  bool(): boolean {
    const lo = this.varint();
    return (lo | this.hi) !== 0;
  }

  /** A float field (fixed32, little-endian IEEE 754 single). */
  float(): number {
    const at = this.need(4, 'a fixed32 value');
    this.pos += 4;
    return this.view.getFloat32(at, true);
  }

  /** A bytes field, as a view into the buffer. */
  bytes(): Uint8Array {
    const [start, end] = this.delimited();
    return this.buf.subarray(start, end);
  }

  /** A string field, which must be UTF-8. */
  string(): string {
    const at = this.pos;
    try {
      return utf8.decode(this.bytes());
    } catch (e) {
      if (e instanceof WasmformerError) throw e;
      throw this.error(`the string at byte ${at} is not UTF-8`);
    }
  }

  /** An embedded message field: a reader over its bytes, named `name` in errors. */
  message(name: string): ProtoReader {
    const [start, end] = this.delimited();
    if (this.depth + 1 > MAX_DEPTH) throw this.error(`messages nested deeper than ${MAX_DEPTH}`);
    return new ProtoReader(this.buf, this.file, start, end, this.path ? `${this.path}.${name}` : name, this.depth + 1, this.view);
  }

  /** Skips the value of the field `next()` read (an unknown field, or a known one of another wire type). */
  skip(): void {
    this.skipValue(this.field, this.wire, this.depth);
  }

  /** A BAD_FILE error naming this reader's file and message. */
  error(why: string): WasmformerError {
    return new WasmformerError('BAD_FILE', `${this.file}: ${this.path ? `${this.path}: ` : ''}${why}`);
  }

  private skipValue(field: number, wire: number, depth: number): void {
    switch (wire) {
      case WIRE.varint:
        this.varint();
        return;
      case WIRE.fixed64:
        this.pos = this.need(8, 'a fixed64 value') + 8;
        return;
      case WIRE.bytes:
        this.delimited();
        return;
      case WIRE.fixed32:
        this.pos = this.need(4, 'a fixed32 value') + 4;
        return;
      default:
        this.skipGroup(field, depth + 1);
    }
  }

  /** Skips a (deprecated) group up to its matching end-group tag. */
  private skipGroup(field: number, depth: number): void {
    if (depth > MAX_DEPTH) throw this.error(`groups nested deeper than ${MAX_DEPTH}`);
    for (;;) {
      if (this.pos >= this.end) throw this.error(`group ${field} has no end-group tag`);
      const at = this.pos;
      this.readTag();
      if (this.wire === WIRE.endGroup) {
        if (this.field !== field) throw this.error(`group ${field} ends with the end-group tag of field ${this.field} at byte ${at}`);
        return;
      }
      this.skipValue(this.field, this.wire, depth);
    }
  }

  /** Reads a tag into `field` and `wire`, refusing field number 0 and the wire types 6 and 7. */
  private readTag(): void {
    const at = this.pos;
    const tag = this.varint();
    const field = this.hi === 0 ? tag >>> 3 : -1;
    const wire = tag & 7;
    if (field <= 0) throw this.error(`invalid field number in the tag at byte ${at}`);
    if (wire > 5) throw this.error(`invalid wire type ${wire} in the tag at byte ${at}`);
    this.field = field;
    this.wire = wire;
  }

  /** Reads a length prefix and returns the [start, end) of the bytes it announces. */
  private delimited(): [number, number] {
    const at = this.pos;
    const lo = this.varint();
    if (this.hi !== 0 || lo > 0x7fffffff) throw this.error(`length at byte ${at} is over 2 GiB`);
    if (lo > this.end - this.pos) {
      throw this.error(`truncated: a field of ${lo} bytes at byte ${this.pos} runs past the end of its message (byte ${this.end})`);
    }
    const start = this.pos;
    this.pos += lo;
    return [start, this.pos];
  }

  /**
   * Reads a varint of up to ten bytes: returns its low 32 bits and leaves the high ones in `hi`
   * (bits past 64 are dropped, as protobuf does).
   */
  private varint(): number {
    const at = this.pos;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw this.error(`truncated: the varint at byte ${at} runs past the end of its message`);
      const b = this.buf[this.pos++];
      const bits = b & 0x7f;
      if (i < 4) lo |= bits << (7 * i);
      else if (i === 4) {
        lo |= (bits & 0xf) << 28;
        hi |= bits >>> 4;
      } else hi |= bits << (7 * i - 32);
      if (b < 0x80) {
        this.hi = hi >>> 0;
        return lo >>> 0;
      }
    }
    throw this.error(`the varint at byte ${at} is longer than ten bytes`);
  }

  /** Checks that `n` more bytes are there; returns where they start. */
  private need(n: number, what: string): number {
    if (n > this.end - this.pos) throw this.error(`truncated: ${what} at byte ${this.pos} runs past the end of its message`);
    return this.pos;
  }
}
