import { describe, expect, it } from 'vitest';
import { ProtoReader, WIRE } from '../../dist/tokenizers/protobuf.js';
import { errorOf } from '../expect-error.js';
import { bField, concat, dField, fField, tag, varint, vField } from './proto-writer.js';

/** Every field of a message as [field, wire, value], values read as `read` says per field. */
function fields(buf: Uint8Array, read: (r: ProtoReader) => unknown = (r) => (r.wire === WIRE.varint ? r.uint64() : r.skip())): unknown[][] {
  const r = new ProtoReader(buf, 'f.bin');
  const out: unknown[][] = [];
  while (r.next()) out.push([r.field, r.wire, read(r)]);
  return out;
}

describe('ProtoReader', () => {
  it('reads varints of one to ten bytes exactly up to 2^53', () => {
    const values = [0, 1, 127, 128, 300, 16383, 16384, 2 ** 31 - 1, 2 ** 32, 2 ** 35 + 5, 2 ** 53 - 1];
    const got = fields(concat(...values.map((v, i) => vField(i + 1, v))));
    expect(got).toEqual(values.map((v, i) => [i + 1, 0, v]));
  });

  it('reads int32 and enums, negative ones sign-extended to ten bytes', () => {
    const buf = concat(vField(1, -1), vField(2, -(2 ** 31)), vField(3, 2 ** 31 - 1), vField(4, 7), vField(5, 2n ** 64n - 2n));
    expect(vField(1, -1).length).toBe(11);
    expect(fields(buf, (r) => r.int32()).map((f) => f[2])).toEqual([-1, -(2 ** 31), 2 ** 31 - 1, 7, -2]);
  });

  it('reads bools, floats, bytes, strings and embedded messages', () => {
    const inner = [vField(1, 5), bField(2, 'ü☃🙂')];
    const buf = concat(vField(1, true), vField(2, false), vField(3, 2), fField(4, -1.5), fField(5, 0.1), bField(6, Uint8Array.of(0, 255)), bField(7, ''), bField(8, inner));
    const r = new ProtoReader(buf, 'f.bin');
    const got: unknown[] = [];
    while (r.next()) {
      if (r.field <= 3) got.push(r.bool());
      else if (r.wire === WIRE.fixed32) got.push(r.float());
      else if (r.field === 6) got.push([...r.bytes()]);
      else if (r.field === 7) got.push(r.string());
      else {
        const m = r.message('inner');
        const sub: unknown[] = [];
        while (m.next()) sub.push(m.wire === WIRE.varint ? m.int32() : m.string());
        got.push(sub);
      }
    }
    expect(got).toEqual([true, false, true, -1.5, Math.fround(0.1), [0, 255], '', [5, 'ü☃🙂']]);
  });

  it('skips values of every wire type, groups (nested) included', () => {
    const group = concat(tag(9, WIRE.startGroup), vField(1, 3), tag(2, WIRE.startGroup), fField(1, 1), tag(2, WIRE.endGroup), dField(3, 2), tag(9, WIRE.endGroup));
    const buf = concat(vField(1, 300), dField(2, 1.5), bField(3, 'abc'), fField(4, 2), group, vField(5, 42));
    expect(fields(buf).map((f) => f.slice(0, 2))).toEqual([[1, 0], [2, 1], [3, 2], [4, 5], [9, 3], [5, 0]]);
    expect(fields(buf).at(-1)).toEqual([5, 0, 42]);
  });

  it('refuses malformed input with BAD_FILE naming the file, the message and the byte', () => {
    const bad = (buf: Uint8Array, read?: (r: ProtoReader) => unknown) => errorOf(() => fields(buf, read), 'BAD_FILE');
    expect(bad(Uint8Array.of(0x08, 0x80))).toBe('f.bin: truncated: the varint at byte 1 runs past the end of its message');
    expect(bad(concat(tag(1, 0), new Uint8Array(10).fill(0x80), Uint8Array.of(1)))).toBe('f.bin: the varint at byte 1 is longer than ten bytes');
    expect(bad(Uint8Array.of(0x0e))).toBe('f.bin: invalid wire type 6 in the tag at byte 0');
    expect(bad(Uint8Array.of(0x0f))).toBe('f.bin: invalid wire type 7 in the tag at byte 0');
    expect(bad(Uint8Array.of(0x00))).toBe('f.bin: invalid field number in the tag at byte 0');
    expect(bad(concat(vField(1, 1), tag(3, WIRE.endGroup)))).toBe('f.bin: an end-group tag without its group at byte 2');
    expect(bad(concat(tag(3, WIRE.startGroup), vField(1, 1)))).toBe('f.bin: group 3 has no end-group tag');
    expect(bad(concat(tag(3, WIRE.startGroup), tag(4, WIRE.endGroup)))).toBe('f.bin: group 3 ends with the end-group tag of field 4 at byte 1');
    expect(bad(concat(tag(1, WIRE.fixed32), Uint8Array.of(1, 2)))).toBe('f.bin: truncated: a fixed32 value at byte 1 runs past the end of its message');
    expect(bad(concat(tag(1, WIRE.fixed64), new Uint8Array(7)))).toBe('f.bin: truncated: a fixed64 value at byte 1 runs past the end of its message');
    expect(bad(concat(tag(1, WIRE.bytes), varint(5), Uint8Array.of(1)))).toBe('f.bin: truncated: a field of 5 bytes at byte 2 runs past the end of its message (byte 3)');
    expect(bad(concat(tag(1, WIRE.bytes), varint(2 ** 31)))).toBe('f.bin: length at byte 1 is over 2 GiB');
    expect(bad(bField(1, Uint8Array.of(0xc3, 0x28)), (r) => r.string())).toBe('f.bin: the string at byte 1 is not UTF-8');
  });

  it('keeps an embedded message inside its parent: a field may not run past the message it is in', () => {
    const inner = concat(tag(1, WIRE.bytes), varint(4), Uint8Array.of(1, 2));
    const buf = concat(bField(1, inner), vField(2, 7), vField(3, 8));
    const r = new ProtoReader(buf, 'f.bin');
    r.next();
    const m = r.message('outer');
    m.next();
    expect(errorOf(() => m.skip(), 'BAD_FILE')).toBe('f.bin: outer: truncated: a field of 4 bytes at byte 4 runs past the end of its message (byte 6)');
  });

  it('refuses nesting deeper than 100 instead of recursing without bound', () => {
    let deep: Uint8Array = vField(1, 1);
    for (let i = 0; i < 101; i++) deep = bField(1, deep);
    const descend = (r: ProtoReader, depth: number): number => (r.next() && r.wire === WIRE.bytes ? descend(r.message(`m${depth}`), depth + 1) : depth);
    expect(errorOf(() => descend(new ProtoReader(deep, 'f.bin'), 0), 'BAD_FILE')).toMatch(/^f\.bin: m0\.m1\..*m99: messages nested deeper than 100$/);
    const groups = concat(...Array.from({ length: 101 }, () => tag(1, WIRE.startGroup)), ...Array.from({ length: 101 }, () => tag(1, WIRE.endGroup)));
    expect(errorOf(() => fields(groups), 'BAD_FILE')).toBe('f.bin: groups nested deeper than 100');
    const ok = concat(...Array.from({ length: 99 }, () => tag(1, WIRE.startGroup)), ...Array.from({ length: 99 }, () => tag(1, WIRE.endGroup)));
    expect(fields(ok)).toEqual([[1, 3, undefined]]);
  });
});
