import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { firstZipEntryName, readZip } from '../../dist/io/zip.js';
import { errorOf } from '../expect-error.js';
import { concat } from './write-safetensors.js';
import { writeZip, type ZipFile } from './write-torch.js';

const text = new TextEncoder();
const FILES: ZipFile[] = [
  { name: 'a/data.pkl', data: text.encode('pickle') },
  { name: 'a/data/0', data: new Uint8Array(64).fill(7) },
  { name: 'a/empty', data: new Uint8Array(0) },
];

const read = (bytes: Uint8Array): Map<string, { begin: number; end: number }> => readZip(bytes, 'z.pt');
const bad = (bytes: Uint8Array): string => errorOf(() => read(bytes), 'BAD_FILE');
const contents = (bytes: Uint8Array): Record<string, string> =>
  Object.fromEntries([...read(bytes)].map(([name, e]) => [name, Buffer.from(bytes.subarray(e.begin, e.end)).toString('hex')]));
const want = Object.fromEntries(FILES.map((f) => [f.name, Buffer.from(f.data).toString('hex')]));

/** A copy of bytes with a u32 or u16 written at `at`. */
function patched(bytes: Uint8Array, at: number, value: number, width: 2 | 4 = 4): Uint8Array {
  const out = bytes.slice();
  const view = new DataView(out.buffer);
  if (width === 4) view.setUint32(at, value, true);
  else view.setUint16(at, value, true);
  return out;
}

/** Where the last end-of-central-directory record and the first central header are. */
function places(bytes: Uint8Array): { end: number; central: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  let end = bytes.length - 22;
  while (view.getUint32(end, true) !== 0x06054b50) end--;
  return { end, central: view.getUint32(end + 16, true) };
}

describe('readZip', () => {
  it('lists stored entries with their data ranges, also zip64 and after a comment', () => {
    expect(contents(writeZip(FILES))).toEqual(want);
    expect(contents(writeZip(FILES, { zip64: true }))).toEqual(want);
    // A comment may hold the record's signature: the record is the one whose comment ends the file.
    expect(contents(writeZip(FILES, { comment: `PK\u0005\u0006${'x'.repeat(40)}` }))).toEqual(want);
    expect(contents(concat([writeZip(FILES), new Uint8Array(30)]))).toEqual(want); // bytes appended
    const torch = new Uint8Array(readFileSync(new URL('./fixtures/torch/kinds-2.13.pt', import.meta.url)));
    const entries = read(torch);
    expect([...entries.keys()].slice(0, 4)).toEqual(['kinds-2.13/data.pkl', 'kinds-2.13/.format_version', 'kinds-2.13/.storage_alignment', 'kinds-2.13/byteorder']);
    const byteorder = entries.get('kinds-2.13/byteorder')!;
    expect(new TextDecoder().decode(torch.subarray(byteorder.begin, byteorder.end))).toBe('little');
    // torch aligns each storage's data to 64 bytes.
    expect(entries.get('kinds-2.13/data/0')!.begin % 64).toBe(0);
  });

  it('firstZipEntryName reads the first local header only', () => {
    expect(firstZipEntryName(writeZip(FILES))).toBe('a/data.pkl');
    expect(firstZipEntryName(writeZip(FILES).subarray(0, 35))).toBe(null);
    expect(firstZipEntryName(text.encode('PK\u0001\u0002 and more than thirty bytes of text'))).toBe(null);
  });

  it('a compressed or encrypted entry is UNSUPPORTED, naming it', () => {
    const deflated = writeZip([FILES[0], { ...FILES[1], method: 8 }]);
    expect(errorOf(() => read(deflated), 'UNSUPPORTED')).toBe('z.pt: zip entry "a/data/0" is compressed (deflate): torch.save ' +
      'writes every entry uncompressed, so the archive was rewritten (zipped again?); save it again with torch.save');
    expect(errorOf(() => read(writeZip([{ ...FILES[0], method: 99 }])), 'UNSUPPORTED')).toMatch(/is compressed \(method 99\)/);
    expect(errorOf(() => read(writeZip([{ ...FILES[0], flags: 1 }])), 'UNSUPPORTED')).toBe('z.pt: zip entry "a/data.pkl" is encrypted');
  });

  it('refuses what is not a zip, or is cut short', () => {
    expect(bad(new Uint8Array(0))).toBe('z.pt: not a zip archive (no end-of-central-directory record in its last 64 KiB): ' +
      'truncated, or another format?');
    expect(bad(text.encode('<!doctype html><html>...</html>'))).toMatch(/not a zip archive/);
    // The end record 70 KiB before the end is not looked for.
    expect(bad(concat([writeZip(FILES), new Uint8Array(70_000)]))).toMatch(/not a zip archive/);
    const zip = writeZip(FILES);
    for (let cut = 0; cut < zip.length; cut++) expect(bad(zip.subarray(0, cut))).toMatch(/^z\.pt: /);
  });

  it('checks every offset and size against the file', () => {
    const zip = writeZip(FILES);
    const { end, central } = places(zip);
    expect(bad(patched(zip, end + 16, central + 1))).toMatch(/the zip's central directory \[\d+, \d+\) runs past its end record at byte \d+/);
    expect(bad(patched(zip, end + 12, 0xfffffff0))).toMatch(/runs past its end record/);
    expect(bad(patched(zip, end + 10, 50, 2))).toMatch(/the zip's central directory of \d+ bytes cannot hold 50 entries/);
    expect(bad(patched(zip, end + 16, central - 1))).toMatch(/central directory is corrupt at byte \d+ \(no entry header\)/);
    expect(bad(patched(zip, central + 42, 1))).toMatch(/zip entry "a\/data\.pkl": no local header at byte 1/);
    expect(bad(patched(zip, central + 42, 0xfffffff0))).toMatch(/no local header|zip64 extra field/);
    expect(bad(patched(patched(zip, central + 20, 1000), central + 24, 1000))).toMatch(/zip entry "a\/data\.pkl" of 1000 bytes at byte \d+ runs past the zip's data/);
    expect(bad(patched(zip, central + 20, 5))).toMatch(/zip entry "a\/data\.pkl" is stored, but its sizes differ \(5 and 6\)/);
    expect(bad(patched(zip, central + 28, 0xffff, 2))).toMatch(/central directory entry at byte \d+ runs past the directory's end/);
    expect(bad(writeZip([FILES[0], FILES[0]]))).toBe('z.pt: zip entry "a/data.pkl" appears twice in the directory');
  });

  it('checks zip64 records and extra fields', () => {
    const zip = writeZip(FILES, { zip64: true });
    const view = new DataView(zip.buffer);
    const locator = places(zip).end - 20;
    const record = Number(view.getBigUint64(locator + 8, true));
    expect(bad(patched(zip, locator + 8, record + 1))).toMatch(/the zip64 locator points to byte \d+, where there is no zip64 end-of-central-directory record/);
    const huge = zip.slice();
    new DataView(huge.buffer).setBigUint64(record + 48, 2n ** 60n, true);
    expect(bad(huge)).toMatch(/zip64 central directory offset 1152921504606846976 is beyond any file/);
    const central = Number(view.getBigUint64(record + 48, true));
    // No zip64 extra although the sizes say 0xffffffff; an extra field too short, or running past its header.
    expect(bad(patched(zip, central + 46 + 10, 0x0002, 2))).toMatch(/zip entry "a\/data\.pkl" has 0xffffffff sizes but no zip64 extra field/);
    expect(bad(patched(zip, central + 46 + 12, 8, 2))).toMatch(/its zip64 extra field is too short/);
    expect(bad(patched(zip, central + 46 + 12, 200, 2))).toMatch(/an extra field runs past the entry's header/);
  });
});
