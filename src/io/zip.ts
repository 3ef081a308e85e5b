import { WasmformerError } from '../errors.js';

/** One stored (uncompressed) entry of a zip archive: where its bytes are (absolute offsets). */
export interface ZipEntry {
  readonly name: string;
  readonly begin: number;
  readonly end: number;
}

const LOCAL_HEADER = 0x04034b50;
const CENTRAL_HEADER = 0x02014b50;
const END_OF_DIRECTORY = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_END_OF_DIRECTORY = 0x06064b50;
const ZIP64_EXTRA = 0x0001;
/** A 32-bit field with this value says "see the zip64 record". */
const U32_MAX = 0xffffffff;
const END_BYTES = 22;
const LOCATOR_BYTES = 20;
const ZIP64_END_BYTES = 56;
const CENTRAL_BYTES = 46;
const LOCAL_BYTES = 30;
/** The longest comment a zip may end with: the end record is in the last 22 + 65535 bytes. */
const MAX_COMMENT = 0xffff;

const UTF8 = new TextDecoder();

const METHODS: Record<number, string> = { 8: 'deflate', 9: 'deflate64', 12: 'bzip2', 14: 'lzma', 93: 'zstd', 95: 'xz' };

type Fail = (message: string) => never;

/** Where the central directory is, from the end record (or its zip64 form), which begins at `limit`. */
interface Directory {
  readonly offset: number;
  readonly size: number;
  readonly count: number;
  readonly limit: number;
}

/** The name of a zip's first entry, from its local header; null when bytes do not begin as a zip. */
export function firstZipEntryName(bytes: Uint8Array): string | null {
  if (bytes.length < LOCAL_BYTES) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== LOCAL_HEADER) return null;
  const nameEnd = LOCAL_BYTES + view.getUint16(26, true);
  return nameEnd > bytes.length ? null : UTF8.decode(bytes.subarray(LOCAL_BYTES, nameEnd));
}

/**
 * Lists a zip archive's entries by name, as torch.save writes them: uncompressed, found through
 * the central directory (zip64 too), each range checked to lie inside the file. Nothing is
 * copied and the loop is bounded by the directory's size. A corrupt archive is BAD_FILE, a
 * compressed or encrypted entry UNSUPPORTED, each naming file (and entry).
 */
export function readZip(bytes: Uint8Array, file: string): Map<string, ZipEntry> {
  const fail = (message: string): never => {
    throw new WasmformerError('BAD_FILE', `${file}: ${message}`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const directory = findDirectory(view, fail);
  const entries = new Map<string, ZipEntry>();
  let at = directory.offset;
  const end = directory.offset + directory.size;
  for (let i = 0; i < directory.count; i++) {
    const [entry, next] = centralEntry(bytes, view, at, end, directory.offset, file, fail);
    if (entries.has(entry.name)) fail(`zip entry ${JSON.stringify(entry.name)} appears twice in the directory`);
    entries.set(entry.name, entry);
    at = next;
  }
  return entries;
}

/** The central directory's place and entry count, from the end-of-central-directory record. */
function findDirectory(view: DataView, fail: Fail): Directory {
  const at = endRecord(view, fail);
  const locator = at - LOCATOR_BYTES;
  // torch writes the zip64 records always; then they are the truth (the 32-bit fields may be 0xffffffff).
  const directory = locator >= 0 && view.getUint32(locator, true) === ZIP64_LOCATOR
    ? zip64Directory(view, locator, fail)
    : { count: view.getUint16(at + 10, true), size: view.getUint32(at + 12, true), offset: view.getUint32(at + 16, true), limit: at };
  if (directory.offset + directory.size > directory.limit) {
    fail(`the zip's central directory [${directory.offset}, ${directory.offset + directory.size}) runs past its end record at byte ${directory.limit}: truncated?`);
  }
  if (directory.count * CENTRAL_BYTES > directory.size) {
    fail(`the zip's central directory of ${directory.size} bytes cannot hold ${directory.count} entries`);
  }
  return directory;
}

/**
 * Where the end-of-central-directory record is, in the file's last 64 KiB: the one whose comment
 * ends the file (a comment may hold the signature too), else the last one (bytes were appended).
 */
function endRecord(view: DataView, fail: Fail): number {
  const last = view.byteLength - END_BYTES;
  let found = -1;
  for (let at = last; at >= 0 && at >= last - MAX_COMMENT; at--) {
    if (view.getUint32(at, true) !== END_OF_DIRECTORY) continue;
    if (at + END_BYTES + view.getUint16(at + 20, true) === view.byteLength) return at;
    if (found < 0) found = at;
  }
  return found >= 0 ? found : fail('not a zip archive (no end-of-central-directory record in its last 64 KiB): truncated, or another format?');
}

function zip64Directory(view: DataView, locator: number, fail: Fail): Directory {
  const at = u64(view, locator + 8, 'zip64 end record offset', fail);
  if (at > locator - ZIP64_END_BYTES || view.getUint32(at, true) !== ZIP64_END_OF_DIRECTORY) {
    fail(`the zip64 locator points to byte ${at}, where there is no zip64 end-of-central-directory record`);
  }
  return {
    count: u64(view, at + 32, 'zip64 entry count', fail),
    size: u64(view, at + 40, 'zip64 central directory size', fail),
    offset: u64(view, at + 48, 'zip64 central directory offset', fail),
    limit: at,
  };
}

/** A u64 field that must be a safe integer (every real offset or size is far below 2^53). */
function u64(view: DataView, at: number, what: string, fail: Fail): number {
  const value = view.getBigUint64(at, true);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} ${value} is beyond any file`);
  return Number(value);
}

/** One central directory header at `at` (before `end`), resolved to its data range; and where the next begins. */
function centralEntry(
  bytes: Uint8Array,
  view: DataView,
  at: number,
  end: number,
  dataLimit: number,
  file: string,
  fail: Fail,
): [ZipEntry, number] {
  if (at + CENTRAL_BYTES > end || view.getUint32(at, true) !== CENTRAL_HEADER) {
    fail(`the zip's central directory is corrupt at byte ${at} (no entry header)`);
  }
  const nameLength = view.getUint16(at + 28, true);
  const extraStart = at + CENTRAL_BYTES + nameLength;
  const extraEnd = extraStart + view.getUint16(at + 30, true);
  const next = extraEnd + view.getUint16(at + 32, true);
  if (next > end) fail(`the zip's central directory entry at byte ${at} runs past the directory's end`);
  const name = UTF8.decode(bytes.subarray(at + CENTRAL_BYTES, extraStart));
  const entry = `zip entry ${JSON.stringify(name)}`;
  const flags = view.getUint16(at + 8, true);
  const method = view.getUint16(at + 10, true);
  if (flags & 1) throw new WasmformerError('UNSUPPORTED', `${file}: ${entry} is encrypted`);
  if (method !== 0) {
    throw new WasmformerError('UNSUPPORTED',
      `${file}: ${entry} is compressed (${METHODS[method] ?? `method ${method}`}): torch.save writes every entry ` +
      'uncompressed, so the archive was rewritten (zipped again?); save it again with torch.save');
  }
  const sizes = zip64Sizes(view, at, extraStart, extraEnd, entry, fail);
  if (sizes.compressed !== sizes.size) fail(`${entry} is stored, but its sizes differ (${sizes.compressed} and ${sizes.size})`);
  const begin = localData(view, sizes.local, dataLimit, entry, fail);
  if (begin + sizes.size > dataLimit) {
    fail(`${entry} of ${sizes.size} bytes at byte ${begin} runs past the zip's data (${dataLimit} bytes): truncated?`);
  }
  return [{ name, begin, end: begin + sizes.size }, next];
}

/** An entry's sizes and local header offset: the 32-bit fields, or the zip64 extra's values where those are 0xffffffff. */
function zip64Sizes(
  view: DataView,
  at: number,
  extraStart: number,
  extraEnd: number,
  entry: string,
  fail: Fail,
): { compressed: number; size: number; local: number } {
  const fields = [view.getUint32(at + 24, true), view.getUint32(at + 20, true), view.getUint32(at + 42, true)];
  if (fields.includes(U32_MAX)) {
    // The zip64 extra holds 8-byte values for exactly the fields that are 0xffffffff, in this order.
    const extra = zip64Extra(view, extraStart, extraEnd, entry, fail);
    let field = extra.begin;
    for (let i = 0; i < fields.length; i++) {
      if (fields[i] !== U32_MAX) continue;
      if (field + 8 > extra.end) fail(`${entry}: its zip64 extra field is too short`);
      fields[i] = u64(view, field, `${entry}: zip64 size or offset`, fail);
      field += 8;
    }
  }
  const [size, compressed, local] = fields;
  return { compressed, size, local };
}

/** The data range of the zip64 extra field among an entry's extra fields. */
function zip64Extra(view: DataView, at: number, end: number, entry: string, fail: Fail): { begin: number; end: number } {
  while (at + 4 <= end) {
    const id = view.getUint16(at, true);
    const next = at + 4 + view.getUint16(at + 2, true);
    if (next > end) fail(`${entry}: an extra field runs past the entry's header`);
    if (id === ZIP64_EXTRA) return { begin: at + 4, end: next };
    at = next;
  }
  return fail(`${entry} has 0xffffffff sizes but no zip64 extra field`);
}

/** Where an entry's data begins: after its local header, which must be inside the data. */
function localData(view: DataView, at: number, dataLimit: number, entry: string, fail: Fail): number {
  if (at + LOCAL_BYTES > dataLimit || view.getUint32(at, true) !== LOCAL_HEADER) {
    fail(`${entry}: no local header at byte ${at}: corrupt or truncated`);
  }
  return at + LOCAL_BYTES + view.getUint16(at + 26, true) + view.getUint16(at + 28, true);
}
