import { WasmformerError } from '../errors.js';
import { describe } from './describe.js';

/** One tensor of a safetensors file: where its bytes are (absolute offsets into the file). */
export interface TensorEntry {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly begin: number;
  readonly end: number;
}

/** Bytes per element of every dtype the safetensors format defines. */
export const DTYPE_SIZES = {
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1,
  U16: 2, I16: 2, F16: 2, BF16: 2,
  U32: 4, I32: 4, F32: 4,
  U64: 8, I64: 8, F64: 8,
} as const;

export type Dtype = keyof typeof DTYPE_SIZES;

/** The official library's limit: a larger header is an attack or a corrupt length. */
const MAX_HEADER_BYTES = 100_000_000;

/**
 * Parses and validates a safetensors file: `u64 LE header length | JSON header | data`.
 * Every tensor's byte range must match its dtype and shape, and the ranges must tile the data
 * section exactly: no overlaps, no holes, no trailing bytes. Errors are BAD_FILE naming file
 * (and tensor), and saying what the file is when it is something else (a zip, a pickle, a web
 * page). Nothing is copied: entries point into bytes. `bytes` may be only the file's beginning,
 * up to the end of its header, with `size` the whole file's (null when unknown: then the ranges
 * are checked against nothing but each other).
 */
export function parseSafetensors(bytes: Uint8Array, file: string, size: number | null = bytes.length): Map<string, TensorEntry> {
  const fail = (message: string): never => {
    throw new WasmformerError('BAD_FILE', `${file}: ${message}`);
  };
  const dataStart = headerEnd(bytes, size, fail);
  if (bytes.length < dataStart) fail(`${bytes.length} bytes end inside the ${dataStart - 8}-byte header: truncated?`);
  const header = parseHeader(bytes.subarray(8, dataStart), (m) => fail(m + notSafetensors(bytes, ': ')));
  const dataLength = size === null ? Number.MAX_SAFE_INTEGER : size - dataStart;
  const entries = new Map<string, TensorEntry>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      checkMetadata(info, fail);
      continue;
    }
    const [dtype, shape, begin, end] = readTensorInfo(name, info, dataLength, fail);
    entries.set(name, { name, dtype, shape, begin: dataStart + begin, end: dataStart + end });
  }
  if (size !== null) checkTiling([...entries.values()], dataStart, size, fail);
  return entries;
}

/**
 * A file's `__metadata__` (free-form strings: "format", "wasmformer.dtype"), or an empty object
 * when it has none. `bytes` may be only the file's beginning, up to the end of its header.
 */
export function safetensorsMetadata(bytes: Uint8Array, file: string): Readonly<Record<string, string>> {
  const fail = (message: string): never => {
    throw new WasmformerError('BAD_FILE', `${file}: ${message}`);
  };
  const dataStart = headerEnd(bytes, null, fail);
  if (bytes.length < dataStart) fail(`${bytes.length} bytes end inside the ${dataStart - 8}-byte header: truncated?`);
  const metadata = parseHeader(bytes.subarray(8, dataStart), fail).__metadata__;
  if (metadata === undefined) return {};
  checkMetadata(metadata, fail);
  return metadata as Record<string, string>;
}

/**
 * How many of a file's first bytes hold its header: 8 while fewer are known, then 8 + the
 * header's length, checked against the limit and the file's size (null when unknown). So a
 * download can be checked as soon as its header is in, before the data arrives.
 */
export function safetensorsHeaderBytes(head: Uint8Array, size: number | null, file: string): number {
  if (head.length < 8 && head.length !== size) return 8;
  return headerEnd(head, size, (message: string): never => {
    throw new WasmformerError('BAD_FILE', `${file}: ${message}`);
  });
}

/** Where the header ends (8 + its length), checked against the limit and the file's size. */
function headerEnd(bytes: Uint8Array, size: number | null, fail: (m: string) => never): number {
  // A zip's signature read as a length is 67 MB: say what it is before waiting for those bytes.
  if (isZip(bytes)) fail(notSafetensors(bytes));
  const length = size ?? bytes.length;
  if (bytes.length < 8) fail(`${length} bytes is too short for a safetensors file (8-byte header length)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // A u64, compared as a bigint: no length above 2^53 may round to a plausible number.
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) {
    fail(`header length ${headerLength} is over the ${MAX_HEADER_BYTES}-byte limit${notSafetensors(bytes, ': ')}`);
  }
  const dataStart = 8 + Number(headerLength);
  if (size !== null && dataStart > size) {
    fail(`header length ${headerLength} runs past the end of the file (${size} bytes)${notSafetensors(bytes, ': ') || ': truncated?'}`);
  }
  return dataStart;
}

function isZip(bytes: Uint8Array): boolean {
  return bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

/**
 * What a file that failed as safetensors is instead, by its first bytes ("this is a zip
 * archive ..."), after `prefix`; empty when it looks like nothing known. Asked only once the
 * file failed: a real header length may begin with any bytes.
 */
function notSafetensors(bytes: Uint8Array, prefix = ''): string {
  const other = otherFormat(bytes);
  return other === null ? '' : `${prefix}this is ${other}, not safetensors`;
}

function otherFormat(bytes: Uint8Array): string | null {
  const text = new TextDecoder('latin1').decode(bytes.subarray(0, 64));
  if (isZip(bytes)) return "a zip archive (PyTorch's torch.save format?)";
  if (bytes[0] === 0x80 && bytes[1] >= 2 && bytes[1] <= 5) return "a Python pickle (PyTorch's legacy torch.save format?)";
  if (/^\s*<(!doctype|html|head|body|\?xml)/i.test(text)) return "an HTML page (a wrong URL, or a server's error page?)";
  if (text.startsWith('version https://git-lfs')) return 'a Git LFS pointer, not the file it stands for (git lfs pull fetches it)';
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) return 'gzip-compressed data';
  if (/^\s*[{[]/.test(text)) return 'JSON text';
  return null;
}

function parseHeader(raw: Uint8Array, fail: (m: string) => never): Record<string, unknown> {
  let text = '';
  try {
    // ignoreBOM keeps a BOM in the text, so that JSON.parse rejects it as the official library does.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(raw);
  } catch {
    fail('header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    fail(`header must be a JSON object, got ${describe(header)}`);
  }
  return header as Record<string, unknown>;
}

/** `__metadata__` is a free-form map of strings (framework name, format); only its type is checked. */
function checkMetadata(info: unknown, fail: (m: string) => never): void {
  const ok = typeof info === 'object' && info !== null && !Array.isArray(info) &&
    Object.values(info).every((v) => typeof v === 'string');
  if (!ok) fail('"__metadata__" must be an object of string values');
}

/** A header entry's dtype, shape and data_offsets (relative to the data section), all checked. */
function readTensorInfo(
  name: string,
  info: unknown,
  dataLength: number,
  fail: (m: string) => never,
): [Dtype, number[], number, number] {
  const tensor = `tensor ${JSON.stringify(name)}`;
  if (typeof info !== 'object' || info === null || Array.isArray(info)) {
    fail(`${tensor}: header entry must be an object, got ${describe(info)}`);
  }
  const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_SIZES, dtype)) {
    fail(`${tensor} has unknown dtype ${describe(dtype)}`);
  }
  if (!Array.isArray(shape) || !shape.every(isNonNegativeInt)) {
    fail(`${tensor} has shape ${describe(shape)}: must be an array of non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInt)) {
    fail(`${tensor} has data_offsets ${describe(offsets)}: must be [begin, end], non-negative integers`);
  }
  const [begin, end] = offsets as number[];
  if (begin > end) fail(`${tensor} has data_offsets [${begin}, ${end}]: begin is after end`);
  if (end > dataLength) {
    fail(`${tensor} has data_offsets [${begin}, ${end}] outside the data section of ${dataLength} bytes: truncated?`);
  }
  const size = DTYPE_SIZES[dtype as Dtype];
  const bytes = byteSize(shape as number[], size);
  if (bytes !== end - begin) {
    fail(`${tensor} with dtype ${dtype} and shape [${(shape as number[]).join(', ')}] needs ` +
      `${bytes > Number.MAX_SAFE_INTEGER ? 'more than 2^53' : bytes} bytes, but data_offsets [${begin}, ${end}] hold ${end - begin}`);
  }
  return [dtype as Dtype, shape as number[], begin, end];
}

function isNonNegativeInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Element count times element size; Infinity-free: stops at 2^53 (no file is that large). */
function byteSize(shape: number[], size: number): number {
  if (shape.includes(0)) return 0;
  let n = size;
  for (const d of shape) {
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) return Number.MAX_SAFE_INTEGER + 1;
  }
  return n;
}

/** The byte ranges, in order, must cover [dataStart, fileEnd) exactly once. */
function checkTiling(entries: TensorEntry[], dataStart: number, fileEnd: number, fail: (m: string) => never): void {
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = dataStart;
  let previous: TensorEntry | null = null;
  const rel = (e: TensorEntry): string => `[${e.begin - dataStart}, ${e.end - dataStart}]`;
  for (const e of entries) {
    if (previous !== null && e.begin < at) {
      fail(`tensors ${JSON.stringify(previous.name)} ${rel(previous)} and ${JSON.stringify(e.name)} ${rel(e)} overlap`);
    }
    if (e.begin > at) {
      fail(`data bytes [${at - dataStart}, ${e.begin - dataStart}) belong to no tensor (a hole before ${JSON.stringify(e.name)})`);
    }
    at = e.end;
    previous = e;
  }
  if (at < fileEnd) {
    fail(`${fileEnd - at} trailing data bytes [${at - dataStart}, ${fileEnd - dataStart}) belong to no tensor`);
  }
}

/** Whether this host stores numbers little-endian, as safetensors does (every current engine). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * A fresh Float32Array with a tensor's values: F32 copied (the source may be unaligned), F16
 * and BF16 widened exactly (subnormals, infinities, NaN payloads and -0 kept). Any other dtype
 * is a BAD_TENSOR error naming the tensor.
 */
export function readF32(bytes: Uint8Array, entry: TensorEntry, file = 'model.safetensors'): Float32Array {
  const { dtype } = entry;
  if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') {
    throw new WasmformerError('BAD_TENSOR',
      `${file}: tensor ${JSON.stringify(entry.name)} has unsupported dtype ${dtype} (F32, F16 or BF16 are read)`);
  }
  const n = (entry.end - entry.begin) / DTYPE_SIZES[dtype];
  const src = new DataView(bytes.buffer, bytes.byteOffset + entry.begin, entry.end - entry.begin);
  const out = new Float32Array(n);
  // Bits are written through a Uint32Array over the output, so no NaN payload is canonicalised;
  // DataView reads little-endian on any host, at any alignment.
  const bits = new Uint32Array(out.buffer);
  if (dtype === 'F32' && LITTLE_ENDIAN) {
    // The file's bytes are this host's float32s: one memcpy, at any alignment (~10x the loop).
    new Uint8Array(out.buffer).set(bytes.subarray(entry.begin, entry.end));
  } else if (dtype === 'F32') {
    for (let i = 0; i < n; i++) bits[i] = src.getUint32(4 * i, true);
  } else if (dtype === 'F16') {
    for (let i = 0; i < n; i++) bits[i] = f16Bits(src.getUint16(2 * i, true));
  } else {
    // bfloat16 is the high half of a float32.
    for (let i = 0; i < n; i++) bits[i] = src.getUint16(2 * i, true) << 16;
  }
  return out;
}

/** The float32 bit pattern of a float16 bit pattern: same value, exactly. */
function f16Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exponent = (h >>> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0; // inf, NaN
  if (exponent !== 0) return (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0; // rebias 15 -> 127
  if (mantissa === 0) return sign >>> 0; // +-0
  // Subnormal: mantissa * 2^-24. Shift it up until its leading 1 is the implicit bit.
  let e = 113; // 127 - 14
  let m = mantissa;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

/** One tensor to write: its little-endian bytes, which its dtype and shape must account for exactly. */
export interface TensorData {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

/**
 * A safetensors file of these tensors, back to back in this order, and metadata strings: the
 * header JSON padded with spaces to a multiple of 8 bytes, as the official writer pads it (so
 * the data section starts aligned).
 */
export function encodeSafetensors(tensors: readonly TensorData[], metadata?: Readonly<Record<string, string>>): Uint8Array {
  const header: Record<string, unknown> = metadata === undefined ? {} : { __metadata__: metadata };
  let offset = 0;
  for (const { name, dtype, shape, data } of tensors) {
    const bytes = byteSize([...shape], DTYPE_SIZES[dtype]);
    if (name === '__metadata__') throw new WasmformerError('BAD_ARGUMENT', 'safetensors: "__metadata__" is the header\'s metadata, not a tensor name');
    if (bytes !== data.length || Object.hasOwn(header, name)) {
      throw new WasmformerError('BAD_ARGUMENT', `safetensors: tensor ${JSON.stringify(name)} ${bytes !== data.length
        ? `with dtype ${dtype} and shape [${shape.join(', ')}] needs ${bytes} bytes, got ${data.length}` : 'is given twice'}`);
    }
    header[name] = { dtype, shape, data_offsets: [offset, offset + data.length] };
    offset += data.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded + offset).fill(0x20, 8, 8 + padded);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  let at = 8 + padded;
  for (const { data } of tensors) {
    out.set(data, at);
    at += data.length;
  }
  return out;
}

/** Float32 values as safetensors stores them: little-endian bytes (a view of them on a little-endian host). */
export function f32Bytes(x: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  const out = new Uint8Array(x.byteLength);
  const view = new DataView(out.buffer);
  for (let i = 0; i < x.length; i++) view.setFloat32(4 * i, x[i], true);
  return out;
}
