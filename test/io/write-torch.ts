// Writes zip archives and pickles in JS, valid or deliberately broken, for the torch reader's tests.
import { concat } from './write-safetensors.js';

const text = new TextEncoder();

function le(bytes: number, value: number | bigint): Uint8Array {
  const out = new Uint8Array(bytes);
  const view = new DataView(out.buffer);
  if (bytes === 2) view.setUint16(0, Number(value), true);
  else if (bytes === 4) view.setUint32(0, Number(value), true);
  else view.setBigUint64(0, BigInt(value), true);
  return out;
}

/** One file of an archive: its name, its bytes, and the compression method its headers claim (0: stored). */
export interface ZipFile {
  name: string;
  data: Uint8Array;
  method?: number;
  flags?: number;
}

/**
 * A zip archive of stored files, as torch.save lays them out: local headers and data, then the
 * central directory and the end records. zip64 writes every size and offset as 0xffffffff with
 * the values in zip64 extra fields and a zip64 end record, as torch does for files over 4 GiB.
 * No CRC is written (the reader checks none).
 */
export function writeZip(files: ZipFile[], options: { zip64?: boolean; comment?: string } = {}): Uint8Array {
  const zip64 = options.zip64 ?? false;
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let at = 0;
  for (const f of files) {
    const name = text.encode(f.name);
    const size = f.data.length;
    const local = concat([
      le(4, 0x04034b50), le(2, 20), le(2, f.flags ?? 0), le(2, f.method ?? 0), le(4, 0), le(4, 0),
      le(4, size), le(4, size), le(2, name.length), le(2, 0), name,
    ]);
    const extra = zip64 ? concat([le(2, 1), le(2, 24), le(8, size), le(8, size), le(8, at)]) : new Uint8Array(0);
    const wide = (n: number): Uint8Array => le(4, zip64 ? 0xffffffff : n);
    central.push(concat([
      le(4, 0x02014b50), le(2, 45), le(2, 45), le(2, f.flags ?? 0), le(2, f.method ?? 0), le(4, 0), le(4, 0),
      wide(size), wide(size), le(2, name.length), le(2, extra.length), le(2, 0), le(2, 0), le(2, 0), le(4, 0),
      wide(at), name, extra,
    ]));
    parts.push(local, f.data);
    at += local.length + size;
  }
  const directory = concat(central);
  const end: Uint8Array[] = [];
  if (zip64) {
    const record = at + directory.length;
    end.push(concat([
      le(4, 0x06064b50), le(8, 44), le(2, 45), le(2, 45), le(4, 0), le(4, 0),
      le(8, files.length), le(8, files.length), le(8, directory.length), le(8, at),
    ]), concat([le(4, 0x07064b50), le(4, 0), le(8, record), le(4, 1)]));
  }
  const comment = text.encode(options.comment ?? '');
  end.push(concat([
    le(4, 0x06054b50), le(2, 0), le(2, 0), le(2, zip64 ? 0xffff : files.length), le(2, zip64 ? 0xffff : files.length),
    le(4, zip64 ? 0xffffffff : directory.length), le(4, zip64 ? 0xffffffff : at), le(2, comment.length), comment,
  ]));
  return concat([...parts, directory, ...end]);
}

/** The records of a torch archive around a pickle: `archive/data.pkl`, `version`, `byteorder`, `data/<key>`. */
export function torchArchive(
  pickle: Uint8Array,
  storages: Record<string, Uint8Array> = {},
  records: Record<string, string | Uint8Array | null> = {},
): Uint8Array {
  const all: Record<string, string | Uint8Array | null> = { 'data.pkl': pickle, byteorder: 'little', version: '3\n', ...records };
  for (const [key, data] of Object.entries(storages)) all[`data/${key}`] = data;
  const files = Object.entries(all)
    .filter((entry): entry is [string, string | Uint8Array] => entry[1] !== null)
    .map(([name, data]) => ({ name: `archive/${name}`, data: typeof data === 'string' ? text.encode(data) : data }));
  return writeZip(files);
}

/** Pickle opcodes by their pickletools names, and the arguments the tests give them. */
export const op = {
  proto: (v = 2): Uint8Array => Uint8Array.of(0x80, v),
  global: (module: string, name: string): Uint8Array => text.encode(`c${module}\n${name}\n`),
  stackGlobal: Uint8Array.of(0x93),
  str: (s: string): Uint8Array => {
    const b = text.encode(s);
    return concat([Uint8Array.of(0x58), le(4, b.length), b]);
  },
  int: (n: number): Uint8Array => {
    if (n >= 0 && n < 256) return Uint8Array.of(0x4b, n);
    if (n >= -(2 ** 31) && n < 2 ** 31) return concat([Uint8Array.of(0x4a), le(4, n >>> 0)]);
    return concat([Uint8Array.of(0x8a, 8), le(8, BigInt.asUintN(64, BigInt(n)))]); // LONG1 of 8 bytes
  },
  mark: Uint8Array.of(0x28),
  tuple: Uint8Array.of(0x74),
  emptyTuple: Uint8Array.of(0x29),
  emptyDict: Uint8Array.of(0x7d),
  emptyList: Uint8Array.of(0x5d),
  setitem: Uint8Array.of(0x73),
  reduce: Uint8Array.of(0x52),
  build: Uint8Array.of(0x62),
  persid: Uint8Array.of(0x51),
  newFalse: Uint8Array.of(0x89),
  none: Uint8Array.of(0x4e),
  stop: Uint8Array.of(0x2e),
} as const;

/** A pickle from opcodes and raw bytes, in order. */
export function pickle(...parts: Uint8Array[]): Uint8Array {
  return concat(parts);
}

/** `(items...)` as a tuple. */
export function tuple(...items: Uint8Array[]): Uint8Array {
  return concat([op.mark, ...items, op.tuple]);
}

/** A tensor as torch pickles it: _rebuild_tensor_v2 of a persistent storage id. */
export interface TensorPickle {
  key: string;
  numel: number;
  size: number[];
  stride?: number[]; // row-major when absent
  offset?: number;
  storage?: string; // torch.FloatStorage when absent
}

function rowMajor(size: number[]): number[] {
  const stride = size.map(() => 1);
  for (let i = size.length - 2; i >= 0; i--) stride[i] = stride[i + 1] * size[i + 1];
  return stride;
}

/** The pickle of one tensor, as a value (to set in a dict). */
export function tensorPickle(t: TensorPickle): Uint8Array {
  const storage = (t.storage ?? 'torch.FloatStorage').split(/\.(?=[^.]+$)/);
  const pid = tuple(op.str('storage'), op.global(storage[0], storage[1]), op.str(t.key), op.str('cpu'), op.int(t.numel));
  return pickle(
    op.global('torch._utils', '_rebuild_tensor_v2'),
    tuple(pid, op.persid, op.int(t.offset ?? 0), tuple(...t.size.map(op.int)), tuple(...(t.stride ?? rowMajor(t.size)).map(op.int)),
      op.newFalse, op.global('collections', 'OrderedDict'), op.emptyTuple, op.reduce),
    op.reduce,
  );
}

/** A whole state dict's pickle: an OrderedDict of name -> value pickles. */
export function stateDictPickle(items: Record<string, Uint8Array>): Uint8Array {
  return pickle(
    op.proto(),
    op.global('collections', 'OrderedDict'), op.emptyTuple, op.reduce,
    ...Object.entries(items).flatMap(([name, value]) => [op.str(name), value, op.setitem]),
    op.stop,
  );
}
