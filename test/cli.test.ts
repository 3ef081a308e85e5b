import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { tensorsOf, writeSafetensors } from './io/write-safetensors.js';
import { FIXTURES, type Expected } from './model/fixtures.js';
import { CLI, wasmformer } from './run-cli.js';

const MODEL = `${FIXTURES}post_ln_relu_stored_pos`;
const EXPECTED = JSON.parse(readFileSync(`${MODEL}/expected.json`, 'utf8')) as Expected;
const NUMBERS = fileURLToPath(new URL('../models/numbers/', import.meta.url));

/** Runs the CLI with `input` on its stdin. */
function withStdin(input: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

describe('wasmformer CLI', () => {
  it('translate --json gives every stdin line exactly one line, in order, errors included', async () => {
    const lines = ['4019', '12a', '', '7', '   ', '999999'];
    const { code, stdout, stderr } = await withStdin(`${lines.join('\n')}\n`, 'translate', '--model', NUMBERS, '--json');
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const out = stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { text: string; translation?: string; error?: { code: string; message: string } });
    expect(out.map((o) => o.text)).toEqual(lines);
    expect(out[0].translation).toBe('four thousand nineteen');
    expect(out[1].error).toEqual({ code: 'BAD_INPUT', message: 'character "a" (U+0061) at position 2 is not in the source vocabulary' });
    expect(out[2].translation).toBe(''); // an empty text translates to an empty text
    expect(out[3].translation).toBe('seven');
    expect(out[4].error?.message).toBe('character " " (U+0020) at position 0 is not in the source vocabulary');
    expect(out[5].translation).toBe('nine hundred ninety-nine thousand nine hundred ninety-nine');
  });

  it('translate without --json prints one translation per line, errors on stderr', async () => {
    const { code, stdout, stderr } = await withStdin('4019\n12a\n\n7\n', 'translate', '--model', NUMBERS);
    expect(code).toBe(0);
    expect(stdout).toBe('four thousand nineteen\nseven\n');
    expect(stderr).toBe('wasmformer: character "a" (U+0061) at position 2 is not in the source vocabulary\n');
  });

  it('translate and demo use the English -> German demo by default, by its generation config (beam 4)', async () => {
    const samples = JSON.parse(readFileSync(new URL('../models/en-de-messages/samples.json', import.meta.url), 'utf8')).items as { en: string; beam4: string; greedy: string }[];
    const [a, b] = samples.filter((s) => s.en === 'Kol (Cameroon)' || s.en === 'Is the package %s installed?');
    expect((await wasmformer('translate', a.en, b.en)).stdout).toBe(`${a.beam4}\n${b.beam4}\n`);
    expect((await wasmformer('translate', '--num-beams', '1', a.en)).stdout).toBe(`${a.greedy}\n`);
    const demo = await wasmformer('demo');
    expect(demo.code).toBe(0);
    expect(demo.stdout).toMatch(/^wasmformer demo: English to German program messages, a Marian model \(7,595,008 parameters, (simd|relaxed) build, f32 weights, 1 thread\)\n/);
    expect(demo.stdout).toContain(`${a.en.padEnd(Math.max(...samples.map((s) => s.en.length)))}  ->  ${a.beam4}   (`);
    expect(demo.stdout).toMatch(/one at a time: [\d.]+ ms; all 14 as one batch: [\d.]+ ms \([\d.]+x\)\n$/);
  });

  it('generate --json prints the greedy ids PyTorch produced, and a speed', async () => {
    const { src, max_new_tokens, ids } = EXPECTED.greedy[0];
    const { code, stdout } = await wasmformer('generate', '--model', MODEL, '--src-ids', src.join(','), '--max-new-tokens', String(max_new_tokens), '--json');
    expect(code).toBe(0);
    const result = JSON.parse(stdout) as { ids: number[]; tokens_per_second: number };
    expect(result.ids).toEqual(ids);
    expect(result.tokens_per_second).toBeGreaterThan(0);
  });

  it('info prints the config, the parameter count and the memory', async () => {
    const { code, stdout } = await wasmformer('info', '--model', MODEL, '--json');
    expect(code).toBe(0);
    const info = JSON.parse(stdout) as { config: { dModel: number }; parameters: number; memory_bytes: number };
    const config = JSON.parse(readFileSync(`${MODEL}/config.json`, 'utf8')) as { d_model: number };
    expect(info.config.dModel).toBe(config.d_model);
    expect(info.parameters).toBeGreaterThan(0);
    expect(info.memory_bytes).toBeGreaterThan(0);
  });

  it('--threads 2 runs the kernels on two threads, with the same translation as one', async () => {
    const info = JSON.parse((await wasmformer('info', '--model', MODEL, '--json', '--threads', '2')).stdout) as { threads: number; threads_reason: string | null };
    expect([info.threads, info.threads_reason]).toEqual([2, null]);
    const [two, one] = await Promise.all([wasmformer('translate', '--threads', '2', 'Directory not empty'), wasmformer('translate', 'Directory not empty')]);
    expect([two.code, two.stdout]).toEqual([0, one.stdout]);
    expect(one.stdout.trim()).not.toBe('');
  });

  it('--dtype q8 runs int8 weights, as loadModel(dir, { dtype: \'q8\' }) does', async () => {
    const [q8, float] = await Promise.all([wasmformer('info', '--model', MODEL, '--json', '--dtype', 'q8'), wasmformer('info', '--model', MODEL, '--json')]);
    const [a, b] = [JSON.parse(q8.stdout), JSON.parse(float.stdout)] as { dtype: string; memory_bytes: number }[];
    expect([a.dtype, b.dtype]).toEqual(['q8', 'f32']);
    expect(a.memory_bytes).toBeLessThan(b.memory_bytes);
    const { code, stdout } = await wasmformer('translate', '--dtype', 'q8', 'Directory not empty');
    expect({ code, stdout }).toEqual({ code: 0, stdout: 'Verzeichnis nicht leer\n' });
  });

  it('fails with one line naming the problem and status 1', async () => {
    const missing = await wasmformer('info', '--model', '/nonexistent');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^wasmformer: \/nonexistent\/config\.json: file not found\n$/);
    const badIds = await wasmformer('generate', '--model', MODEL, '--src-ids', '5,x');
    expect(badIds.code).toBe(1);
    expect(badIds.stderr).toMatch(/--src-ids: expected comma-separated integers/);
    const outside = await wasmformer('generate', '--model', MODEL, '--src-ids', '5,999');
    expect(outside.stderr).toMatch(/source: id 999 at position 1 is outside the vocabulary/);
  });

  it('prints its usage for --help and -h, and its version for --version', async () => {
    for (const flag of ['--help', '-h']) {
      const { code, stdout } = await wasmformer(flag);
      expect(code).toBe(0);
      expect(stdout).toMatch(/^usage:\n  wasmformer demo/);
    }
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(await wasmformer('--version')).toEqual({ code: 0, stdout: `wasmformer ${pkg.version}\n`, stderr: '' });
  });

  it.each([
    [['frobnicate'], 'unknown command "frobnicate": the commands are demo, translate, generate, info, quantize (wasmformer --help)'],
    [[], 'no command given: one of demo, translate, generate, info, quantize (wasmformer --help)'],
    [['info', '--model'], "Option '--model <value>' argument missing (wasmformer --help)"],
    [['info', '--frob'], 'unknown option --frob (wasmformer --help)'],
    [['generate', '--model', MODEL, '--src-ids', '5,6', '--max-new-tokens', '-1'], '--max-new-tokens: expected a non-negative integer, got "-1"'],
    [['generate', '--model', MODEL, '--src-ids', '5,6', '--max-new-tokens', '2.5'], '--max-new-tokens: expected a non-negative integer, got "2.5"'],
    [['generate', '--model', MODEL, '--src-ids', '7,,3'], '--src-ids: expected comma-separated integers, got "7,,3"'],
    [['generate', '--model', MODEL, '--src-ids', ''], '--src-ids: expected comma-separated integers, got ""'],
    [['generate', '--model', MODEL], '--src-ids is required (wasmformer --help)'],
    [['info', '--model', MODEL, '--src-ids', '5'], '--src-ids does not apply to info (wasmformer --help)'],
    [['info', '--model', MODEL, '--build', 'fast'], '--build must be simd or relaxed, got "fast"'],
    [['info', '--model', MODEL, '--dtype', 'q4'], '--dtype must be f32 or q8, got "q4"'],
    [['info', '--model', MODEL, '--threads', '0'], '--threads must be auto or an integer in [1, 64], got "0"'],
    [['info', '--model', MODEL, '--threads', '2.5'], '--threads must be auto or an integer in [1, 64], got "2.5"'],
    [['info', '--model', MODEL, '--threads', '65'], '--threads must be auto or an integer in [1, 64], got "65"'],
    [['quantize', '--model', MODEL, '--out', '/tmp/wasmformer-nowhere', '--dtype', 'q8'], '--dtype does not apply to quantize (wasmformer --help)'],
    [['info', '--model', MODEL, 'extra'], 'info takes no text: "extra"'],
    [['quantize', '--model', MODEL], '--out is required (wasmformer --help)'],
    [['quantize', '--out', '/tmp/nowhere'], '--model is required (wasmformer --help)'],
    [['quantize', '--model', MODEL, '--out', MODEL], `--out must not be --model (${MODEL}): quantize writes a new folder beside the model's`],
    [['quantize', '--model', MODEL, '--out', `${MODEL}/`], `--out must not be --model (${MODEL}/): quantize writes a new folder beside the model's`],
    [['quantize', '--model', MODEL, '--out', `${MODEL}/../post_ln_relu_stored_pos`], `--out must not be --model (${MODEL}/../post_ln_relu_stored_pos): quantize writes a new folder beside the model's`],
    [['quantize', '--model', MODEL, '--out', `${MODEL}/config.json`], `--out ${MODEL}/config.json is a file, not a folder`],
    [['quantize', '--model', MODEL, '--out', `${FIXTURES}no_final_norm`], `--out ${FIXTURES}no_final_norm is not empty (config.json, expected.json, model.safetensors), and not a folder wasmformer quantize wrote: give a new or an empty folder`],
    [['quantize', '--model', MODEL, '--out', '/tmp/x', '--build', 'simd'], '--build does not apply to quantize (wasmformer --help)'],
    [['quantize', '--model', MODEL, '--out', '/tmp/x', '--json'], '--json does not apply to quantize (wasmformer --help)'],
  ])('%j fails with one line and status 1, no stack', async (args, message) => {
    const { code, stdout, stderr } = await wasmformer(...args);
    expect({ code, stdout, stderr }).toEqual({ code: 1, stdout: '', stderr: `wasmformer: ${message}\n` });
  });
});

describe('wasmformer quantize', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'wasmformer-quantize-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('writes the folder, says what it wrote, and info reports q8 with the same parameters', async () => {
    const out = join(tmp, 'numbers');
    const run = await wasmformer('quantize', '--model', NUMBERS, '--out', out);
    expect(run).toEqual({
      code: 0, stderr: '',
      stdout: `${out}/model.safetensors: 1,030,208 bytes, 23 matrices as int8 (as float32: 3,773,536 bytes)\ncopied config.json, tokenizer.json\n`,
    });
    const [q8, float] = await Promise.all([wasmformer('info', '--model', out, '--json'), wasmformer('info', '--model', NUMBERS, '--json')]);
    const [a, b] = [JSON.parse(q8.stdout), JSON.parse(float.stdout)] as { dtype: string; parameters: number }[];
    expect([a.dtype, b.dtype, a.parameters]).toEqual(['q8', 'f32', b.parameters]);
    expect((await wasmformer('translate', '--model', out, '4019')).stdout).toBe('four thousand nineteen\n');
  });

  it('takes an empty folder, and replaces a folder it wrote before (stale files of its own removed)', async () => {
    const out = join(tmp, 'again');
    mkdirSync(out);
    expect((await wasmformer('quantize', '--model', NUMBERS, '--out', out)).code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
    const marian = `${FIXTURES}marian/swish_scaled_stored`;
    expect((await wasmformer('quantize', '--model', marian, '--out', out)).code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors']);
  });

  it('refuses a folder of the same names that it did not write, and leaves it as it was', async () => {
    const out = join(tmp, 'float');
    cpSync(`${FIXTURES}marian/swish_scaled_stored`, out, { recursive: true });
    rmSync(join(out, 'expected.json'));
    const before = readFileSync(join(out, 'model.safetensors'));
    const run = await wasmformer('quantize', '--model', NUMBERS, '--out', out);
    expect(run.stderr).toBe(`wasmformer: --out ${out} is not empty (config.json, generation_config.json, model.safetensors), ` +
      'and not a folder wasmformer quantize wrote: give a new or an empty folder\n');
    expect(readFileSync(join(out, 'model.safetensors')).equals(before)).toBe(true);
  });

  it('refuses a weight int8 cannot hold, naming the file and the tensor, and writes nothing', async () => {
    const model = join(tmp, 'nan');
    cpSync(MODEL, model, { recursive: true });
    const tensors = tensorsOf(readFileSync(join(model, 'model.safetensors')));
    const name = 'transformer.decoder.layers.0.linear2.weight';
    const values = new Float32Array(tensors[name].data.buffer);
    values[5] = NaN;
    writeFileSync(join(model, 'model.safetensors'), writeSafetensors(tensors));
    const out = join(tmp, 'nan-q8');
    const run = await wasmformer('quantize', '--model', model, '--out', out);
    expect(run).toEqual({ code: 1, stdout: '', stderr: `wasmformer: ${model}/model.safetensors: tensor "${name}": element 5 is NaN, which int8 weights (dtype 'q8') cannot hold\n` });
    expect(existsSync(out)).toBe(false);
  });

  it('reads torch.save files, and what does not load is the loader\'s error', async () => {
    const out = join(tmp, 'bin');
    expect((await wasmformer('quantize', '--model', `${FIXTURES}marian/pytorch_model_bin`, '--out', out)).code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors']);
    expect((await wasmformer('quantize', '--model', '/nonexistent', '--out', join(tmp, 'none'))).stderr)
      .toBe('wasmformer: /nonexistent/config.json: file not found\n');
  });
});
