// Seeded fuzzing of the torch.save reader: from real torch files, thousands of mutated ones
// (bytes flipped in the pickle or the zip's records, pickles edited and zipped again, files cut
// short). Each must parse (and then be consistent) or fail with a WasmformerError: never another
// exception, never a hang.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { WasmformerError } from '../../dist/errors.js';
import { DTYPE_SIZES, readF32 } from '../../dist/io/safetensors.js';
import { parseTorchZip } from '../../dist/io/torch.js';
import { readZip } from '../../dist/io/zip.js';
import { random, type Rand } from '../helpers.js';
import { concat } from './write-safetensors.js';
import { writeZip, type ZipFile } from './write-torch.js';

const BASES = ['kinds-1.13.pt', 'kinds-2.13.pt', 'protocol4-2.13.pt', 'checkpoint-2.13.pt', 'model-1.13.pt']
  .map((name) => new Uint8Array(readFileSync(new URL(`./fixtures/torch/${name}`, import.meta.url))));

/** Parses and reads what a loader would; returns what happened. */
function load(bytes: Uint8Array): string {
  try {
    const entries = parseTorchZip(bytes, 'fuzz.pt');
    for (const e of entries.values()) {
      const numel = e.shape.reduce((a, b) => a * b, 1);
      if (e.begin < 0 || e.end > bytes.length || e.end - e.begin !== numel * DTYPE_SIZES[e.dtype]) {
        throw new Error(`entry ${e.name} [${e.begin}, ${e.end}) of ${bytes.length} bytes does not hold its shape`);
      }
      if (e.dtype === 'F32' || e.dtype === 'F16' || e.dtype === 'BF16') readF32(bytes, e);
    }
    return 'ok';
  } catch (e) {
    if (!(e instanceof WasmformerError)) throw e;
    if (!e.message.startsWith('fuzz.pt: ')) throw new Error(`a message that does not name the file: ${e.message}`);
    return e.code;
  }
}

/** Opcodes and bytes that pickles are made of, for insertions. */
const PICKLE_BYTES = [0x28, 0x29, 0x2e, 0x4b, 0x4a, 0x51, 0x52, 0x58, 0x5d, 0x61, 0x62, 0x63, 0x65, 0x68, 0x71, 0x73,
  0x74, 0x75, 0x7d, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x93, 0x94, 0x95, 0x0a, 0x00, 0xff];

/** The pickle edited: bytes inserted, removed, replaced or a stretch repeated. */
function editPickle(pkl: Uint8Array, r: Rand): Uint8Array {
  const at = r.int(pkl.length + 1);
  switch (r.int(4)) {
    case 0: return concat([pkl.subarray(0, at), Uint8Array.of(r.pick(PICKLE_BYTES)), pkl.subarray(at)]);
    case 1: return concat([pkl.subarray(0, at), pkl.subarray(at + 1 + r.int(8))]);
    case 2: {
      const out = pkl.slice();
      if (at < out.length) out[at] = r.chance(0.5) ? r.pick(PICKLE_BYTES) : r.int(256);
      return out;
    }
    default: {
      const length = 1 + r.int(64);
      return concat([pkl.subarray(0, at + length), pkl.subarray(at, at + length), pkl.subarray(at + length)]);
    }
  }
}

/** A mutated copy of a base file. */
function mutate(r: Rand): Uint8Array {
  let bytes = r.pick(BASES).slice();
  const records = readZip(bytes, 'base');
  const pkl = [...records.values()][0]; // torch writes data.pkl first
  for (let k = 1 + r.int(3); k > 0; k--) {
    switch (r.int(6)) {
      case 0: case 1: { // flip bits in the pickle, in place: the zip stays valid
        if (pkl.end > bytes.length) break;
        bytes[pkl.begin + r.int(pkl.end - pkl.begin)] ^= 1 << r.int(8);
        break;
      }
      case 2: { // the pickle edited, and the archive zipped again
        let files: ZipFile[];
        try {
          files = [...readZip(bytes, 'base').values()].map((e) => ({ name: e.name, data: bytes.slice(e.begin, e.end) }));
        } catch {
          break; // an earlier mutation broke the zip
        }
        files[0] = { ...files[0], data: editPickle(files[0].data, r) };
        bytes = writeZip(files, { zip64: r.chance(0.3) });
        break;
      }
      case 3: bytes[r.int(bytes.length)] ^= 1 << r.int(8); break; // anywhere: headers, directory, records
      case 4: bytes = bytes.subarray(0, r.int(bytes.length)); break;
      default: bytes = concat([bytes, new Uint8Array(1 + r.int(32)).fill(r.int(256))]);
    }
  }
  return bytes;
}

describe('torch fuzz', () => {
  it('the base files parse or are refused as they should be', () => {
    expect(BASES.map(load)).toEqual(['ok', 'ok', 'ok', 'BAD_FILE', 'ok']);
  });

  it('mutated files parse consistently or fail with a WasmformerError naming the file', () => {
    const outcomes = new Map<string, number>();
    const start = Date.now();
    for (let i = 0; i < 20_000; i++) {
      const seed = 7000 + i;
      let outcome: string;
      try {
        outcome = load(mutate(random(seed)));
      } catch (e) {
        throw new Error(`mutation seed ${seed}: ${(e as Error).stack}`);
      }
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    const seconds = (Date.now() - start) / 1000;
    expect(outcomes.get('BAD_FILE')).toBeGreaterThan(5000);
    expect(outcomes.get('UNSUPPORTED')).toBeGreaterThan(50);
    expect(outcomes.get('ok')).toBeGreaterThan(500);
    expect([...outcomes.keys()].sort()).toEqual(['BAD_FILE', 'UNSUPPORTED', 'ok']);
    expect(seconds).toBeLessThan(30);
  });

  it('every truncation of every base file is refused', () => {
    for (const base of BASES.slice(0, 3)) {
      for (let cut = 0; cut < base.length; cut++) expect(load(base.subarray(0, cut))).toBe('BAD_FILE');
    }
  });
});
