import { describe, expect, it } from 'vitest';
import { parseSafetensors, readF32 } from '../../dist/io/safetensors.js';
import { errorOf } from '../expect-error.js';
import { assemble, concat, split, writeSafetensors, type Header } from './write-safetensors.js';

const FILE = 'dir/model.safetensors';

/** Two F32 tensors, a scalar and an I32 tensor, with metadata: a valid file of 64 data bytes. */
function sample(): Uint8Array {
  return writeSafetensors({
    'a.weight': { shape: [2, 3], data: [1, 2, 3, 4, 5, 6] },
    'a.bias': { shape: [3], data: [-1, 0.5, 1e-30] },
    scalar: { shape: [], data: [7] },
    ids: { shape: [2, 2], dtype: 'I32', data: new Uint8Array(new Int32Array([1, -2, 3, -4]).buffer) },
    empty: { shape: [0, 5] },
    'b.weight': { shape: [2], data: [8, 9] },
  }, { format: 'pt' });
}

const parse = (bytes: Uint8Array): ReturnType<typeof parseSafetensors> => parseSafetensors(bytes, FILE);
const bad = (bytes: Uint8Array): string => errorOf(() => parse(bytes), 'BAD_FILE');

/** The sample with its header edited; data unchanged. */
function edited(edit: (h: Header) => void, data?: Uint8Array): Uint8Array {
  const { header, data: original } = split(sample());
  edit(header);
  return assemble(header, data ?? original);
}

describe('parseSafetensors', () => {
  it('lists every tensor with absolute byte offsets, skipping __metadata__', () => {
    const bytes = sample();
    const entries = parse(bytes);
    expect([...entries.keys()].sort()).toEqual(['a.bias', 'a.weight', 'b.weight', 'empty', 'ids', 'scalar']);
    const start = 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(entries.get('a.weight')).toEqual({ name: 'a.weight', dtype: 'F32', shape: [2, 3], begin: start, end: start + 24 });
    expect(entries.get('scalar')).toMatchObject({ shape: [], begin: start + 36, end: start + 40 });
    expect(entries.get('empty')).toMatchObject({ shape: [0, 5], begin: start + 56, end: start + 56 });
    expect(entries.get('b.weight')!.end).toBe(bytes.length);
  });

  it('reads F32 values, also unaligned and from a view into a larger buffer', () => {
    const tensors = { x: { shape: [3], data: [1.5, -2, Math.PI] }, y: { shape: [1], data: [4] } };
    const { header, data } = split(writeSafetensors(tensors));
    for (const pad of ['', ' ', '  ', '   ']) {
      const file = assemble(JSON.stringify(header) + pad, data);
      const host = new Uint8Array(file.length + 3);
      host.set(file, 3);
      const view = host.subarray(3); // byteOffset 3: every float is unaligned
      const entries = parseSafetensors(view, FILE);
      const x = readF32(view, entries.get('x')!);
      expect([...x]).toEqual([1.5, -2, Math.fround(Math.PI)]);
      expect(x.buffer).not.toBe(host.buffer);
      expect([...readF32(view, entries.get('y')!)]).toEqual([4]);
    }
  });

  it('rejects a file cut short at every length, naming the file', () => {
    const bytes = sample();
    for (let cut = 0; cut < bytes.length; cut++) {
      expect(bad(bytes.subarray(0, cut))).toMatch(/^dir\/model\.safetensors: /);
    }
    expect(bad(bytes.subarray(0, 5))).toMatch(/5 bytes is too short/);
    expect(bad(bytes.subarray(0, 20))).toMatch(/header length \d+ runs past the end of the file \(20 bytes\)/);
    expect(bad(bytes.subarray(0, bytes.length - 1))).toMatch(/tensor "b\.weight" has data_offsets \[56, 64\] outside the data section of 63 bytes/);
  });

  it('rejects a header length past the end or absurdly large', () => {
    const { header, data } = split(sample());
    const length = new TextEncoder().encode(JSON.stringify(header)).length;
    const withLength = (n: number | bigint): Uint8Array => assemble(header, data, { headerLength: n });
    expect(bad(withLength(length + data.length + 1))).toMatch(/runs past the end/);
    for (const n of [2n ** 32n + BigInt(length), 2n ** 53n + 1n, 2n ** 64n - 1n, 100_000_001]) {
      expect(bad(withLength(n))).toMatch(/header length \d+ is over the 100000000-byte limit/);
    }
    expect(bad(withLength(2n ** 64n - 1n))).toBe(`${FILE}: header length 18446744073709551615 is over the 100000000-byte limit`);
    // Shorter than the JSON: the header is cut, so not JSON.
    expect(bad(withLength(length - 1))).toMatch(/header is not valid JSON/);
  });

  it('rejects a header that is not UTF-8 JSON of an object', () => {
    const empty = new Uint8Array(0);
    expect(bad(assemble('{"a": ', empty))).toMatch(/^dir\/model\.safetensors: header is not valid JSON/);
    expect(bad(assemble('', empty))).toMatch(/header is not valid JSON/);
    expect(bad(assemble('\ufeff{}', empty))).toMatch(/header is not valid JSON/);
    for (const [text, got] of [['[]', '[]'], ['"x"', '"x"'], ['3', '3'], ['null', 'null']]) {
      expect(bad(assemble(text, empty))).toBe(`${FILE}: header must be a JSON object, got ${got}`);
    }
    const invalid = assemble('{"a"}', empty);
    invalid[9] = 0xff; // a lone byte that no UTF-8 sequence starts with
    expect(bad(invalid)).toBe(`${FILE}: header is not valid UTF-8`);
    expect(parse(assemble('{}', empty)).size).toBe(0);
  });

  it('checks __metadata__ is an object of strings', () => {
    for (const metadata of [{ a: 1 }, 'pt', null, ['x']]) {
      expect(bad(edited((h) => { h.__metadata__ = metadata; }))).toMatch(/"__metadata__" must be an object of string values/);
    }
  });

  it('rejects unknown dtypes, naming the tensor', () => {
    for (const dtype of ['F128', 'f32', 'float32', 4, null, undefined]) {
      const message = bad(edited((h) => { (h['a.bias'] as Header).dtype = dtype; }));
      expect(message).toMatch(/^dir\/model\.safetensors: tensor "a\.bias" has unknown dtype /);
    }
    expect(bad(edited((h) => { h['a.bias'] = [1]; }))).toMatch(/tensor "a\.bias": header entry must be an object, got \[1\]/);
  });

  it('rejects shapes that are not arrays of non-negative integers', () => {
    for (const shape of [[-3], [1.5, 2], ['3'], [null], '3', 3, null, undefined, [2 ** 53]]) {
      const message = bad(edited((h) => { (h['a.bias'] as Header).shape = shape; }));
      expect(message).toMatch(/tensor "a\.bias" has shape .*: must be an array of non-negative integers/);
    }
  });

  it('rejects bad data_offsets', () => {
    for (const offsets of [[24], [24, 36, 40], [-1, 11], [24.5, 36], ['24', 36], null, undefined, {}]) {
      const message = bad(edited((h) => { (h['a.bias'] as Header).data_offsets = offsets; }));
      expect(message).toMatch(/tensor "a\.bias" has data_offsets .*: must be \[begin, end\], non-negative integers/);
    }
    expect(bad(edited((h) => { (h['a.bias'] as Header).data_offsets = [36, 24]; })))
      .toBe(`${FILE}: tensor "a.bias" has data_offsets [36, 24]: begin is after end`);
    expect(bad(edited((h) => { (h['b.weight'] as Header).data_offsets = [60, 68]; })))
      .toMatch(/tensor "b\.weight" has data_offsets \[60, 68\] outside the data section of 64 bytes/);
  });

  it('rejects a byte size that does not match dtype and shape', () => {
    expect(bad(edited((h) => { (h['a.bias'] as Header).shape = [4]; })))
      .toBe(`${FILE}: tensor "a.bias" with dtype F32 and shape [4] needs 16 bytes, but data_offsets [24, 36] hold 12`);
    expect(bad(edited((h) => { (h['a.bias'] as Header).dtype = 'F16'; })))
      .toMatch(/"a\.bias" with dtype F16 and shape \[3\] needs 6 bytes/);
    expect(bad(edited((h) => { (h['a.bias'] as Header).shape = [2 ** 30, 2 ** 30, 2 ** 30]; })))
      .toMatch(/needs more than 2\^53 bytes/);
  });

  it('rejects overlapping tensors, naming both', () => {
    const data = new Uint8Array(12);
    const file = assemble({
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    }, data);
    expect(bad(file)).toBe(`${FILE}: tensors "a" [0, 8] and "b" [4, 12] overlap`);
    const same = assemble({
      a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] },
      b: { dtype: 'I32', shape: [3], data_offsets: [0, 12] },
    }, data);
    expect(bad(same)).toMatch(/tensors "[ab]" \[0, 12\] and "[ab]" \[0, 12\] overlap/);
    const inside = edited((h) => { (h.empty as Header).data_offsets = [10, 10]; });
    expect(bad(inside)).toMatch(/tensors "a\.weight" \[0, 24\] and "empty" \[10, 10\] overlap/);
  });

  it('rejects data bytes that no tensor claims: holes and trailing bytes', () => {
    const hole = assemble({
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [12, 20] },
    }, new Uint8Array(20));
    expect(bad(hole)).toBe(`${FILE}: data bytes [8, 12) belong to no tensor (a hole before "b")`);
    const first = assemble({ a: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, new Uint8Array(12));
    expect(bad(first)).toMatch(/data bytes \[0, 4\) belong to no tensor \(a hole before "a"\)/);
    const { header, data } = split(sample());
    expect(bad(assemble(header, concat([data, new Uint8Array(3)]))))
      .toBe(`${FILE}: 3 trailing data bytes [64, 67) belong to no tensor`);
    expect(bad(assemble({}, new Uint8Array(1)))).toMatch(/1 trailing data bytes \[0, 1\)/);
  });

  it('accepts the tensors in any order of offsets, zero-sized ones anywhere between', () => {
    const file = assemble({
      z: { dtype: 'F32', shape: [0], data_offsets: [8, 8] },
      b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
      a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      y: { dtype: 'BF16', shape: [3, 0], data_offsets: [8, 8] },
    }, new Uint8Array(new Float32Array([1, 2]).buffer));
    const entries = parse(file);
    expect(readF32(file, entries.get('b')!)[0]).toBe(2);
    expect(readF32(file, entries.get('z')!).length).toBe(0);
  });
});

/** The value of a float16 bit pattern, from its definition. */
function f16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m === 0 ? sign * Infinity : NaN;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** The value of a bfloat16 bit pattern, from its definition (the upper half of a float32). */
function bf16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 7) & 0xff;
  const m = h & 0x7f;
  if (e === 0) return sign * m * 2 ** -133;
  if (e === 255) return m === 0 ? sign * Infinity : NaN;
  return sign * (1 + m / 128) * 2 ** (e - 127);
}

/** A file with one tensor "t" holding these 16-bit patterns, placed at an odd byte offset. */
function halfFile(dtype: string, patterns: number[]): { file: Uint8Array; values: Float32Array } {
  const raw = new Uint8Array(new Uint16Array(patterns).buffer);
  const file = assemble({ t: { dtype, shape: [patterns.length], data_offsets: [0, raw.length] } }, raw);
  const entries = parseSafetensors(file, FILE);
  return { file, values: readF32(file, entries.get('t')!) };
}

describe('readF32 widening', () => {
  const all = Array.from({ length: 65536 }, (_, h) => h);

  it('widens every float16 exactly: subnormals, -0, infinities, NaN', () => {
    const { values } = halfFile('F16', all);
    for (const h of all) {
      if (!Object.is(values[h], f16Value(h))) throw new Error(`f16 0x${h.toString(16)}: got ${values[h]}, want ${f16Value(h)}`);
    }
    const known: [number, number][] = [
      [0x0000, 0], [0x8000, -0], [0x3c00, 1], [0xc000, -2], [0x7bff, 65504], [0x3555, 0.333251953125],
      [0x0001, 5.960464477539063e-8], [0x8001, -5.960464477539063e-8], [0x03ff, 6.097555160522461e-5],
      [0x0400, 6.103515625e-5], [0x7c00, Infinity], [0xfc00, -Infinity], [0x7e00, NaN],
    ];
    for (const [h, want] of known) expect(values[h]).toBe(want);
  });

  it('widens every bfloat16 exactly', () => {
    const { values } = halfFile('BF16', all);
    for (const h of all) {
      if (!Object.is(values[h], bf16Value(h))) throw new Error(`bf16 0x${h.toString(16)}: got ${values[h]}, want ${bf16Value(h)}`);
    }
    const known: [number, number][] = [
      [0x3f80, 1], [0x8000, -0], [0x4049, 3.140625], [0x0001, 2 ** -133], [0x7f80, Infinity], [0xff80, -Infinity],
      [0x7fc0, NaN], [0x7f7f, 3.3895313892515355e38],
    ];
    for (const [h, want] of known) expect(values[h]).toBe(want);
  });

  it('keeps NaN payloads and signs bit for bit', () => {
    const f16 = new Uint32Array(halfFile('F16', [0x7c01, 0xfe00, 0x7dff]).values.buffer);
    expect([...f16]).toEqual([0x7f802000, 0xffc00000, 0x7fbfe000]);
    const bf16 = new Uint32Array(halfFile('BF16', [0x7f81, 0xffc1]).values.buffer);
    expect([...bf16]).toEqual([0x7f810000, 0xffc10000]);
    const raw = new Uint8Array(new Uint32Array([0x7f800001, 0xffc12345]).buffer);
    const file = assemble({ t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, raw);
    const f32 = new Uint32Array(readF32(file, parseSafetensors(file, FILE).get('t')!).buffer);
    expect([...f32]).toEqual([0x7f800001, 0xffc12345]);
  });

  it('refuses other dtypes with BAD_TENSOR naming file and tensor', () => {
    const bytes = sample();
    const ids = parse(bytes).get('ids')!;
    expect(errorOf(() => readF32(bytes, ids, FILE), 'BAD_TENSOR'))
      .toBe(`${FILE}: tensor "ids" has unsupported dtype I32 (F32, F16 or BF16 are read)`);
  });
});
