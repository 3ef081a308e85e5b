// Seeded fuzzing of the model-file layer: from a valid model, thousands of mutated files and
// configs. Each must either load (and then be consistent) or fail with a WasmformerError.
import { describe, expect, it } from 'vitest';
import { WasmformerError } from '../../dist/errors.js';
import { checkWeights, parseConfig, type ModelConfig } from '../../dist/io/index.js';
import { parseSafetensors, readF32 } from '../../dist/io/safetensors.js';
import { random, type Rand } from '../helpers.js';
import { tinyConfig, tinyTensors } from './tiny-model.js';
import { assemble, concat, split, writeSafetensors, type Header } from './write-safetensors.js';

const CONFIG_JSON = tinyConfig({ num_encoder_layers: 1 });
const CONFIG = parseConfig(CONFIG_JSON, 'config.json');
const VALID = writeSafetensors({
  ...tinyTensors(CONFIG_JSON, { posEmbedding: [5, 1, 6], generatorBias: true }),
  'generator.weight': { shape: [9, 6], dtype: 'F16' },
  'other.count': { shape: [], dtype: 'I64' },
}, { format: 'pt' });

/** Parses, checks and reads everything the model would read; returns what happened. */
function load(bytes: Uint8Array, config: ModelConfig = CONFIG): string {
  try {
    const entries = parseSafetensors(bytes, 'model.safetensors');
    const resolved = checkWeights(config, entries, 'model.safetensors');
    // A file that passes is consistent: every entry inside the file, the right number of floats.
    for (const e of entries.values()) {
      if (e.begin < 0 || e.end > bytes.length || e.begin > e.end) throw new Error(`entry ${e.name} outside the file`);
    }
    for (const { entry } of resolved.values()) {
      if (entry === null) continue;
      const values = readF32(bytes, entry);
      if (values.length !== entry.shape.reduce((a, b) => a * b, 1)) throw new Error(`${entry.name}: wrong length`);
    }
    return 'ok';
  } catch (e) {
    if (e instanceof WasmformerError) return e.code;
    throw e;
  }
}

const WEIRD_NUMBERS: unknown[] = [-1, 0, 1, 2, 3, 5, 6, 7, 8, 9, 18, 2 ** 31, 2 ** 53, 2 ** 64, 1.5, -0, '2', null, [], {}, true];
const DTYPES = ['F32', 'F16', 'BF16', 'F64', 'I64', 'I32', 'U8', 'BOOL', 'F8_E4M3', 'X', '', 'f32'];

/** One structural edit of a header entry: its shape, dtype, offsets, name or presence. */
function editHeader(header: Header, r: Rand): void {
  const names = Object.keys(header).filter((n) => n !== '__metadata__');
  if (names.length === 0) return;
  const name = r.pick(names);
  const entry = header[name] as Record<string, unknown>;
  // Earlier edits may have broken the entry: edit what is left of it.
  if (typeof entry !== 'object' || entry === null) return;
  const offsets = Array.isArray(entry.data_offsets) ? (entry.data_offsets as number[]) : [0, 0];
  const shape = Array.isArray(entry.shape) ? (entry.shape as unknown[]) : [];
  switch (r.int(9)) {
    case 0: shape[r.int(shape.length + 1)] = r.pick(WEIRD_NUMBERS); break;
    case 1: shape.splice(r.int(shape.length + 1), r.int(2), ...(r.chance(0.5) ? [1] : [])); break;
    case 2: entry.dtype = r.pick(DTYPES); break;
    case 3: offsets[r.int(2)] += r.pick([-8, -4, -2, -1, 1, 2, 4, 8, 1e6]); break;
    case 4: entry.data_offsets = r.pick([[offsets[1], offsets[0]], [offsets[0]], [...offsets, 0], 'x', null]); break;
    case 5: delete header[name]; break;
    case 6: header[`${name}.copy`] = structuredClone(entry); break;
    case 7: { // swap the names of two entries
      const other = r.pick(names);
      [header[name], header[other]] = [header[other], header[name]];
      break;
    }
    default: delete entry[r.pick(['dtype', 'shape', 'data_offsets'])];
  }
}

/** A mutated copy of VALID: byte flips, cuts, extensions, header-length and header-JSON edits. */
function mutate(r: Rand): Uint8Array {
  let bytes = VALID.slice();
  const headerEnd = 8 + new DataView(bytes.buffer).getUint32(0, true);
  for (let k = 1 + r.int(3); k > 0; k--) {
    switch (r.int(6)) {
      case 0: { // flip a byte, mostly in the header
        const at = r.chance(0.8) ? r.int(Math.min(headerEnd, bytes.length)) : r.int(bytes.length);
        bytes[at] ^= 1 << r.int(8);
        break;
      }
      case 1: bytes = bytes.subarray(0, r.int(bytes.length)); break;
      case 2: bytes = concat([bytes, new Uint8Array(1 + r.int(16))]); break;
      case 3: { // a header length near the true one, or anything at all
        const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        if (bytes.length < 8) break;
        if (r.chance(0.7)) view.setUint32(0, view.getUint32(0, true) + r.int(33) - 16, true);
        else view.setUint32(r.pick([0, 4]), r.int(2 ** 32), true);
        break;
      }
      case 4: case 5: { // re-serialise the header after structural edits
        let parts: { header: Header; data: Uint8Array };
        try {
          parts = split(bytes);
        } catch {
          break; // an earlier mutation broke the header: nothing to edit
        }
        for (let e = 1 + r.int(2); e > 0; e--) editHeader(parts.header, r);
        let text = JSON.stringify(parts.header);
        if (r.chance(0.2)) { // junk inside the JSON text
          const at = r.int(text.length);
          text = text.slice(0, at) + r.pick(['"', ',', '}', '{', '\\', '\u00e9', '\ud800', ' ', '0']) + text.slice(at + r.int(2));
        }
        bytes = assemble(text, parts.data, { pad: r.chance(0.5) });
        break;
      }
    }
  }
  return bytes;
}

describe('fuzz', () => {
  it('the valid file loads', () => {
    expect(load(VALID)).toBe('ok');
  });

  it('mutated files load or fail with a WasmformerError, never anything else', () => {
    const outcomes = new Map<string, number>();
    let slowest = { ms: 0, seed: 0 };
    for (let i = 0; i < 20_000; i++) {
      const bytes = mutate(random(1000 + i));
      let outcome: string;
      const start = performance.now();
      try {
        outcome = load(bytes);
      } catch (e) {
        throw new Error(`mutation seed ${1000 + i}: ${(e as Error).stack}`);
      }
      const ms = performance.now() - start;
      if (ms > slowest.ms) slowest = { ms, seed: 1000 + i };
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    // Both kinds of failure happen, and some mutations (padding, trailing-byte flips) still load.
    expect(outcomes.get('BAD_FILE')).toBeGreaterThan(1000);
    expect(outcomes.get('BAD_TENSOR')).toBeGreaterThan(100);
    expect(outcomes.get('ok')).toBeGreaterThan(100);
    expect([...outcomes.keys()].sort()).toEqual(['BAD_FILE', 'BAD_TENSOR', 'ok']);
    // No mutation makes the reader slow (a header claiming huge shapes or counts): each file of
    // a few KB is refused or loaded in well under a millisecond, so 500 ms is only crossed by a
    // defect, not by a busy machine (a per-file bound, where a total over 20,000 files was not).
    expect(slowest.ms, `mutation seed ${slowest.seed}`).toBeLessThan(500);
  });

  it('mutated configs parse and check against the weights, or fail with a WasmformerError', () => {
    const outcomes = new Map<string, number>();
    const fields = Object.keys(CONFIG_JSON);
    const values: unknown[] = [...WEIRD_NUMBERS, 'relu', 'gelu', false, 1e-5, NaN, undefined, '{'];
    for (let i = 0; i < 5_000; i++) {
      const r = random(50_000 + i);
      const json: Record<string, unknown> = { ...CONFIG_JSON };
      for (let k = 1 + r.int(2); k > 0; k--) json[r.pick(fields)] = r.pick(values);
      let outcome: string;
      try {
        const config = parseConfig(r.chance(0.1) ? JSON.stringify(json).slice(0, -r.int(3)) : json, 'config.json');
        outcome = load(VALID, config);
      } catch (e) {
        if (!(e instanceof WasmformerError)) throw new Error(`config seed ${50_000 + i}: ${(e as Error).stack}`);
        outcome = e.code;
      }
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    expect([...outcomes.keys()].sort()).toEqual(['BAD_CONFIG', 'BAD_TENSOR', 'ok']);
  });
});
