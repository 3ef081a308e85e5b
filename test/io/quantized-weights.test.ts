// Checkpoints with int8 matrices (the files `wasmformer quantize` writes): I8 for a matrix with
// its row scales beside it as `<name>_scale` F32 [rows], float for everything else, and the
// safetensors writer behind them.
import { describe, expect, it } from 'vitest';
import { checkWeights, encodeSafetensors, parameterCount, parseConfig, parseSafetensors, type Resolved } from '../../dist/io/index.js';
import { loadModel } from '../../dist/index.js';
import { errorOf, rejectionOf } from '../expect-error.js';
import { BUILD } from '../helpers.js';
import { tinyConfig, tinyTensors, type ConfigJson } from './tiny-model.js';
import { writeSafetensors, type TensorSpec } from './write-safetensors.js';

const FILE = 'model.safetensors';
const JSON_ = tinyConfig(); // d_model 6, dim_feedforward 5, vocabularies 7 and 9, max_len 4
const D = 6;

/** The tiny model with every matrix as I8 (values 1..) and its scales (0.01 each); positions and vectors as they are. */
function quantized(json: ConfigJson = JSON_, options = {}): Record<string, TensorSpec> {
  const out: Record<string, TensorSpec> = {};
  for (const [name, t] of Object.entries(tinyTensors(json, { posEmbedding: [5, 1, D], generatorWeight: true, generatorBias: true, ...options }))) {
    if (t.shape.length !== 2) {
      out[name] = t;
      continue;
    }
    const n = t.shape[0] * t.shape[1];
    out[name] = { shape: t.shape, dtype: 'I8', data: Uint8Array.from({ length: n }, (_, i) => (i % 200) + 1) };
    out[`${name}_scale`] = { shape: [t.shape[0]], data: Array.from({ length: t.shape[0] }, () => 0.01) };
  }
  return out;
}

function check(tensors: Record<string, TensorSpec>): Resolved {
  return checkWeights(parseConfig(JSON_, 'config.json'), parseSafetensors(writeSafetensors(tensors), FILE), FILE);
}

const badTensor = (tensors: Record<string, TensorSpec>): string => errorOf(() => check(tensors), 'BAD_TENSOR');
const IN_PROJ = 'transformer.encoder.layers.1.self_attn.in_proj_weight';

describe('checkWeights with I8 matrices', () => {
  it('accepts every matrix as I8 with its scales, and counts the parameters of the float file (scales are none)', () => {
    const float = check(tinyTensors(JSON_, { posEmbedding: [5, 1, D], generatorWeight: true, generatorBias: true }));
    const q8 = check(quantized());
    expect(q8.get('encoder.1.self.k.weight')!.entry).toMatchObject({ name: IN_PROJ, dtype: 'I8', shape: [3 * D, D] });
    expect(parameterCount(q8)).toBe(parameterCount(float));
  });

  it('refuses an I8 matrix without its scales, naming both tensors', () => {
    const { [`${IN_PROJ}_scale`]: _, ...rest } = quantized();
    expect(badTensor(rest)).toBe(`${FILE}: tensor "${IN_PROJ}" has dtype I8 but the file has no "${IN_PROJ}_scale" beside it ` +
      `(F32 [18]: one scale per row of I8 "${IN_PROJ}")`);
  });

  it.each([
    [[19], 'F32'], [[6], 'F32'], [[18, 1], 'F32'], [[], 'F32'], [[18], 'F16'], [[18], 'I8'],
  ])('refuses scales of shape %j and dtype %s, naming both tensors', (shape, dtype) => {
    const tensors = { ...quantized(), [`${IN_PROJ}_scale`]: { shape, dtype } };
    expect(badTensor(tensors)).toBe(`${FILE}: tensor "${IN_PROJ}_scale" has dtype ${dtype} and shape [${shape.join(', ')}], ` +
      `expected F32 [18]: one scale per row of I8 "${IN_PROJ}"`);
  });

  it.each([
    'transformer.encoder.layers.0.norm1.weight', 'transformer.decoder.norm.bias', 'transformer.decoder.layers.0.linear1.bias',
    'transformer.encoder.layers.0.self_attn.in_proj_bias', 'generator.bias',
  ])('refuses I8 for %s, which is not a matrix', (name) => {
    const tensors = quantized();
    const tensor = { ...tensors[name], dtype: 'I8', data: undefined };
    expect(badTensor({ ...tensors, [name]: tensor, [`${name}_scale`]: { shape: [tensor.shape[0]] } }))
      .toBe(`${FILE}: tensor "${name}" has dtype I8, which only matrices may have: norms, biases and positions are F32, F16 or BF16`);
  });

  it('refuses I8 positions, and other integer dtypes for a matrix', () => {
    const pos = 'positional_encoding.pos_embedding';
    expect(badTensor({ ...quantized(), [pos]: { shape: [5, 1, D], dtype: 'I8' } }))
      .toBe(`${FILE}: tensor "${pos}" has dtype I8, which only matrices may have: norms, biases and positions are F32, F16 or BF16`);
    expect(badTensor({ ...quantized(), [IN_PROJ]: { shape: [18, D], dtype: 'U8' } }))
      .toBe(`${FILE}: tensor "${IN_PROJ}" has dtype U8, expected F32, F16 or BF16 (or I8 with "${IN_PROJ}_scale")`);
  });

  it('still checks an I8 matrix\'s shape first', () => {
    expect(badTensor({ ...quantized(), [IN_PROJ]: { shape: [17, D], dtype: 'I8' } }))
      .toBe(`${FILE}: tensor "${IN_PROJ}" has shape [17, 6], expected [18, 6]`);
  });
});

describe('loading I8 matrices', () => {
  const load = (tensors: Record<string, TensorSpec>, dtype?: 'f32' | 'q8') =>
    loadModel({ config: JSON_, weights: writeSafetensors(tensors) }, { build: BUILD, dtype });

  it('runs q8 without being asked, and f32 when asked', async () => {
    expect((await load(quantized())).dtype).toBe('q8');
    expect((await load(quantized(), 'f32')).dtype).toBe('f32');
    expect((await load(tinyTensors(JSON_))).dtype).toBe('f32');
  });

  it('refuses a scale that is not finite, naming the tensor and the element', async () => {
    for (const dtype of [undefined, 'f32', 'q8'] as const) {
      const tensors = quantized();
      tensors[`${IN_PROJ}_scale`] = { shape: [18], data: Array.from({ length: 18 }, (_, i) => (i === 13 ? NaN : 0.5)) };
      expect(await rejectionOf(load(tensors, dtype), 'BAD_TENSOR')).toBe(`weights: tensor "${IN_PROJ}_scale": element 13 is NaN, which a scale cannot be`);
    }
  });

  it('refuses a float weight that int8 cannot hold, counting its element in the stored tensor', async () => {
    const tensors = tinyTensors(JSON_);
    const values = Float32Array.from(tensors[IN_PROJ].data as ArrayLike<number>);
    values[D * D + 7] = -Infinity; // in the keys' rows, the second slot the tensor holds
    tensors[IN_PROJ] = { shape: [18, D], data: values };
    expect(await rejectionOf(load(tensors, 'q8'), 'BAD_TENSOR'))
      .toBe(`weights: tensor "${IN_PROJ}": element 43 is -Infinity, which int8 weights (dtype 'q8') cannot hold`);
    expect((await load(tensors, 'f32')).dtype).toBe('f32'); // float32 holds it
  });
});

describe('encodeSafetensors', () => {
  const tensors = {
    'a.weight': { shape: [2, 3], dtype: 'I8', data: Uint8Array.of(1, 2, 3, 255, 254, 128) },
    'a.weight_scale': { shape: [2], data: new Uint8Array(Float32Array.of(0.5, -2).buffer) },
    'é': { shape: [], data: new Uint8Array(Float32Array.of(7).buffer) },
    empty: { shape: [0, 5], data: new Uint8Array(0) },
  };
  const given = Object.entries(tensors).map(([name, t]) => ({ name, dtype: t.dtype ?? 'F32', shape: t.shape, data: t.data })) as Parameters<typeof encodeSafetensors>[0];

  it('writes what the tests\' own writer writes, byte for byte (header padded with spaces to 8 bytes), and parses back', () => {
    const bytes = encodeSafetensors(given, { format: 'pt' });
    expect(Buffer.from(bytes).equals(Buffer.from(writeSafetensors(tensors, { format: 'pt' })))).toBe(true);
    expect(Number(new DataView(bytes.buffer).getBigUint64(0, true)) % 8).toBe(0);
    const entries = parseSafetensors(bytes, FILE);
    expect([...entries.values()].map((e) => [e.name, e.dtype, e.shape])).toEqual(given.map((t) => [t.name, t.dtype, t.shape]));
  });

  it('refuses data of the wrong size, a name given twice, and a tensor named as the metadata', () => {
    expect(errorOf(() => encodeSafetensors([{ ...given[0], data: new Uint8Array(5) }]), 'BAD_ARGUMENT'))
      .toBe('safetensors: tensor "a.weight" with dtype I8 and shape [2, 3] needs 6 bytes, got 5');
    expect(errorOf(() => encodeSafetensors([given[0], given[0]]), 'BAD_ARGUMENT')).toBe('safetensors: tensor "a.weight" is given twice');
    // With metadata or without: the reader would refuse the file either way.
    for (const metadata of [{}, undefined]) {
      expect(errorOf(() => encodeSafetensors([{ ...given[2], name: '__metadata__' }], metadata), 'BAD_ARGUMENT'))
        .toBe('safetensors: "__metadata__" is the header\'s metadata, not a tensor name');
    }
  });
});
