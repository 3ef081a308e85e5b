// Quantized folders (`wasmformer quantize`): the shipped demos and the fixtures quantized by the
// CLI into temporary folders, then loaded without a dtype. The file holds I8 matrices with their
// row scales (exactly the bytes their shapes need), and loads to the very model that
// loadModel(float folder, { dtype: 'q8' }) builds: the same logits bit for bit, the same ids.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, loadTranslator, type Model } from '../../dist/index.js';
import { expectedTensors, readModel, type TensorEntry } from '../../dist/io/index.js';
import { random, BUILD } from '../helpers.js';
import { split, tensorsOf, writeSafetensors, type TensorSpec } from '../io/write-safetensors.js';
import { wasmformer } from '../run-cli.js';
import { FIXTURES, fixtures } from './fixtures.js';

const MODELS = fileURLToPath(new URL('../../models/', import.meta.url));
const CASES = [
  `${MODELS}numbers`, `${MODELS}en-de-messages`, `${FIXTURES}shared/marian-tiny`,
  ...readdirSync(`${FIXTURES}marian`).map((name) => `${FIXTURES}marian/${name}`),
  ...fixtures().map(({ dir }) => dir),
].map((dir) => ({ dir, name: dir.slice(dir.lastIndexOf('/') + 1) }));

const TMP = mkdtempSync(join(tmpdir(), 'wasmformer-q8-'));
const q8 = (name: string): string => join(TMP, name);
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

beforeAll(async () => {
  for (const { dir, name } of CASES) {
    const run = await wasmformer('quantize', '--model', dir, '--out', q8(name));
    expect(run, name).toMatchObject({ code: 0, stderr: '' });
  }
}, 120_000);

type Header = Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;

/** A file's header and data section, read here from the bytes (not by the library under test). */
function readSafetensors(file: string): { header: Header; metadata: unknown; headerBytes: number; data: Uint8Array } {
  const bytes = new Uint8Array(readFileSync(file));
  const { header, data } = split(bytes);
  const { __metadata__: metadata, ...tensors } = header;
  return { header: tensors as Header, metadata, headerBytes: bytes.length - data.length, data };
}

/** Whether a stored tensor is a matrix the loader quantizes (2-D, not a position table, not Marian's [1, vocab] bias). */
const isMatrix = (name: string, shape: readonly number[]): boolean =>
  shape.length === 2 && !/pos_embedding|embed_positions|final_logits_bias/.test(name);

/** The first index where two float arrays differ in their bits, or -1. */
function firstDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const [x, y] = [new Uint32Array(a.buffer, a.byteOffset, a.length), new Uint32Array(b.buffer, b.byteOffset, b.length)];
  return x.findIndex((v, i) => v !== y[i]);
}

/** Seeded sources (pad-free ids, eos last) and teacher-forced targets for a model. */
function inputs(model: Model, count: number): { src: number[]; tgt: number[] }[] {
  const c = model.config;
  const r = random(c.srcVocabSize * 7 + c.dModel);
  const id = (n: number): number => {
    const i = r.int(n - 1);
    return i >= c.padId ? i + 1 : i;
  };
  return Array.from({ length: count }, (_, i) => {
    const n = 1 + ((3 * i + 2) % Math.min(8, c.maxLen - 1));
    return {
      src: [...Array.from({ length: n }, () => id(c.srcVocabSize)), c.eosId],
      tgt: [c.decoderStartId, ...Array.from({ length: n }, () => r.int(c.tgtVocabSize))],
    };
  });
}

describe.each(CASES)('a quantized folder: $name', ({ dir, name }) => {
  it('stores each matrix as I8 with its F32 scales, in exactly the bytes its shapes need', async () => {
    const { header, metadata, headerBytes, data } = readSafetensors(join(q8(name), 'model.safetensors'));
    expect(metadata).toEqual({ format: 'pt', 'wasmformer.dtype': 'q8' });
    const float = await readModel(dir);
    // What the file must hold: each tensor of the model once (expectedTensors), a stored position table as it was.
    const tensors: { name: string; shape: readonly number[] }[] = expectedTensors(float.config)
      .filter((t) => !t.optional || float.tensors.has(t.name));
    for (const [n, entry] of float.tensors) if (/pos_embedding|embed_positions/.test(n)) tensors.push({ name: n, shape: entry.shape });
    let bytes = 0;
    let matrices = 0;
    for (const t of tensors) {
      const elements = t.shape.reduce((a, b) => a * b, 1);
      bytes += isMatrix(t.name, t.shape) ? elements + 4 * t.shape[0] : 4 * elements;
      if (isMatrix(t.name, t.shape)) matrices++;
    }
    expect(data.length).toBe(bytes);
    expect(statSync(join(q8(name), 'model.safetensors')).size).toBe(headerBytes + bytes);
    expect(headerBytes % 8).toBe(0);
    // Every tensor under a name the float folder stores, its shape unchanged; matrices I8, the rest F32.
    const names = Object.keys(header).filter((n) => !n.endsWith('_scale'));
    expect(names.length).toBe(tensors.length);
    expect(Object.keys(header).length).toBe(tensors.length + matrices);
    for (const n of names) {
      const { dtype, shape } = header[n];
      expect(shape, n).toEqual(float.tensors.get(n)!.shape);
      expect(dtype, n).toBe(isMatrix(n, shape) ? 'I8' : 'F32');
      if (dtype === 'I8') expect(header[`${n}_scale`], n).toMatchObject({ dtype: 'F32', shape: [shape[0]] });
      else expect(header[`${n}_scale`], n).toBeUndefined();
    }
  });

  it('copies the config and tokenizer files unchanged, and nothing else', () => {
    const wanted = /^(config|generation_config|tokenizer|tokenizer_config|vocab|target_vocab)\.json$|\.spm$/;
    const copied = readdirSync(q8(name)).filter((f) => f !== 'model.safetensors').sort();
    expect(copied).toEqual(readdirSync(dir).filter((f) => wanted.test(f)).sort());
    for (const f of copied) expect(readFileSync(join(q8(name), f)).equals(readFileSync(join(dir, f))), f).toBe(true);
  });

  describe('loaded without a dtype', () => {
    let quantized: Model;
    let atLoad: Model;
    beforeAll(async () => {
      quantized = await loadModel(q8(name), { build: BUILD });
      atLoad = await loadModel(dir, { build: BUILD, dtype: 'q8' });
    });

    it("runs q8, with the float folder's parameter count", () => {
      expect(quantized.dtype).toBe('q8');
      expect(quantized.parameters).toBe(atLoad.parameters);
      expect(quantized.config).toEqual(atLoad.config);
    });

    it("gives the logits of the float folder quantized at load, bit for bit, and the same ids", async () => {
      for (const { src, tgt } of inputs(quantized, 4)) {
        expect(firstDifference(quantized.forward(src, tgt), atLoad.forward(src, tgt)), `${src}`).toBe(-1);
        expect(await quantized.generate(src)).toEqual(await atLoad.generate(src));
        expect(await quantized.generate(src, { numBeams: 3, maxNewTokens: 6 })).toEqual(await atLoad.generate(src, { numBeams: 3, maxNewTokens: 6 }));
      }
    });
  });
});

describe('quantized demos translate as the float ones quantized at load', () => {
  it.each([
    ['numbers', (s: { text: string }) => s.text],
    ['en-de-messages', (s: { en: string }) => s.en],
  ] as const)('%s', async (name, text) => {
    const items = JSON.parse(readFileSync(`${MODELS}${name}/samples.json`, 'utf8')).items as never[];
    const texts = items.map(text);
    const quantized = await loadTranslator(q8(name), { build: BUILD });
    const atLoad = await loadTranslator(`${MODELS}${name}`, { build: BUILD, dtype: 'q8' });
    expect(quantized.model.dtype).toBe('q8');
    const translations = await quantized.translate(texts);
    expect(translations).toEqual(await atLoad.translate(texts));
    for (const t of texts.slice(0, 3)) expect(await quantized.translate(t)).toBe(await atLoad.translate(t));
    // The sizes, for the README: the float file and its quantized copy.
    const size = (folder: string) => statSync(join(folder, 'model.safetensors')).size;
    console.log(`${name}: model.safetensors ${size(`${MODELS}${name}`)} bytes, quantized ${size(q8(name))} bytes`);
  });
});

type Tensors = ReturnType<typeof tensorsOf>;

/** An I8 matrix of a quantized file, dequantized here: values times their row's scale, rounded to float32. */
function dequantized(tensors: Tensors, n: string): Float32Array {
  const { shape, data } = tensors[n];
  const values = new Int8Array(data.buffer, data.byteOffset, data.length);
  const scales = new Float32Array(tensors[`${n}_scale`].data.buffer);
  const cols = values.length / shape[0];
  return Float32Array.from(values, (v, i) => v * scales[Math.floor(i / cols)]);
}

/** A file from a quantized file's tensors, each I8 matrix as `choose` says: kept (with its scales), or given as F32 values. */
function rewrite(tensors: Tensors, choose: (name: string, i: number) => Float32Array | null): Uint8Array {
  const out: Record<string, TensorSpec> = {};
  let i = 0;
  for (const [n, t] of Object.entries(tensors)) {
    if (n.endsWith('_scale')) continue;
    const floats = t.dtype === 'I8' ? choose(n, i++) : null;
    if (floats !== null) out[n] = { shape: t.shape, data: floats };
    else out[n] = t;
    if (t.dtype === 'I8' && floats === null) out[`${n}_scale`] = tensors[`${n}_scale`];
  }
  return writeSafetensors(out);
}

describe.each(['post_ln_relu_stored_pos', 'swish_scaled_stored', 'untied_lm_head_bf16'])('%s, rewritten', (name) => {
  const dir = CASES.find((c) => c.name === name)!.dir;
  const config = () => readFileSync(join(q8(name), 'config.json'), 'utf8');
  const generationConfig = () => {
    try {
      return readFileSync(join(q8(name), 'generation_config.json'), 'utf8');
    } catch {
      return undefined;
    }
  };
  const same = async (a: Model, b: Model): Promise<void> => {
    for (const { src, tgt } of inputs(a, 3)) {
      expect(firstDifference(a.forward(src, tgt), b.forward(src, tgt))).toBe(-1);
      expect(await a.generate(src)).toEqual(await b.generate(src));
    }
  };

  it("dtype 'f32' runs the int8 values times their scales", async () => {
    const tensors = tensorsOf(readFileSync(join(q8(name), 'model.safetensors')));
    const floats = rewrite(tensors, (n) => dequantized(tensors, n));
    const fromFloats = await loadModel({ config: config(), generationConfig: generationConfig(), weights: floats }, { build: BUILD });
    const f32 = await loadModel(q8(name), { build: BUILD, dtype: 'f32' });
    expect([fromFloats.dtype, f32.dtype]).toEqual(['f32', 'f32']);
    expect(f32.parameters).toBe(fromFloats.parameters);
    await same(f32, fromFloats);
  });

  it('a mixed file (every other matrix float) runs q8, its float matrices quantized at load', async () => {
    const float = await readModel(dir);
    const original = (n: string): Float32Array => float.readTensor(float.tensors.get(n) as TensorEntry);
    const mixed = rewrite(tensorsOf(readFileSync(join(q8(name), 'model.safetensors'))), (n, i) => (i % 2 === 0 ? original(n) : null));
    expect(Object.values(tensorsOf(mixed)).filter((t) => t.dtype === 'I8').length).toBeGreaterThan(2);
    const model = await loadModel({ config: config(), generationConfig: generationConfig(), weights: mixed }, { build: BUILD });
    expect(model.dtype).toBe('q8');
    await same(model, await loadModel(dir, { build: BUILD, dtype: 'q8' }));
  });
});

describe('quantize on a quantized folder', () => {
  it('writes the same file again (its I8 matrices kept as they are)', async () => {
    const again = q8('numbers-again');
    expect((await wasmformer('quantize', '--model', q8('numbers'), '--out', again)).code).toBe(0);
    expect(readFileSync(join(again, 'model.safetensors')).equals(readFileSync(join(q8('numbers'), 'model.safetensors')))).toBe(true);
    writeFileSync(join(again, 'marker'), ''); // no longer only what quantize writes
    expect((await wasmformer('quantize', '--model', q8('numbers'), '--out', again)).code).toBe(1);
  });
});
