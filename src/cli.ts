#!/usr/bin/env node
// The `wasmformer` command: decode with a model folder from the terminal. Every error prints
// one line, `wasmformer: <what was wrong>`, and exits with status 1.
import { mkdir, open as openFile, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { demoModel } from './demo.js';
import { WasmformerError } from './errors.js';
import { allFamilies, familyNamed } from './families/index.js';
import type { GenerateOptions } from './generate/index.js';
import { readModel, safetensorsHeaderBytes, safetensorsMetadata, WEIGHTS_FILE } from './io/index.js';
import { companionFiles, Q8_METADATA, quantizedSafetensors } from './io/quantize.js';
import { readOptionalModelFile } from './io/source.js';
import { loadModel, type LoadOptions } from './model/load.js';
import type { Model } from './model/model.js';
import { MAX_THREADS } from './runtime/index.js';
import { loadTranslator, type Translator } from './translator.js';

const USAGE = `usage:
  wasmformer demo                    translate a few messages with the English -> German demo, then read lines
  wasmformer translate [--model DIR] [DECODING] [--json] [TEXT...]   (no TEXT: one per line of stdin)
  wasmformer generate --model DIR --src-ids 5,6,7 [DECODING] [--json]
  wasmformer info --model DIR [--json]
  wasmformer quantize --model DIR --out DIR   a copy with int8 matrices (q8): about a quarter of the bytes
decoding (default: the model's generation config, so beam search for opus-mt):
  --num-beams N          beam search with N beams (1: greedy)
  --max-new-tokens N     tokens to generate at most, the final eos included
options:
  --build simd|relaxed   the kernel build (default: the best this engine runs; not for quantize)
  --dtype f32|q8         q8: int8 weights, quantized at load (default: as the folder stores them)
  --threads N|auto       threads for the kernels (default 1; auto: the cores, at most 4)
  -h, --help             this text
  --version              the version of wasmformer`;

const OPTIONS = {
  model: { type: 'string' },
  out: { type: 'string' },
  'src-ids': { type: 'string' },
  'max-new-tokens': { type: 'string' },
  'num-beams': { type: 'string' },
  json: { type: 'boolean' },
  build: { type: 'string' },
  dtype: { type: 'string' },
  threads: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

type Flag = keyof typeof OPTIONS;
type Args = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;

/** Each command and the flags it takes (besides --help and --version). */
const COMMANDS: Record<string, { run: (args: Args) => Promise<void>; flags: Flag[] }> = {
  demo: { run: demo, flags: ['build', 'dtype', 'threads'] },
  translate: { run: translate, flags: ['model', 'max-new-tokens', 'num-beams', 'json', 'build', 'dtype', 'threads'] },
  generate: { run: generate, flags: ['model', 'src-ids', 'max-new-tokens', 'num-beams', 'json', 'build', 'dtype', 'threads'] },
  info: { run: info, flags: ['model', 'json', 'build', 'dtype', 'threads'] },
  quantize: { run: quantize, flags: ['model', 'out'] },
};

async function main(argv: string[]): Promise<void> {
  const args = parse(argv);
  if (args.values.help) return console.log(USAGE);
  if (args.values.version) return console.log(await version());
  const name = args.positionals[0];
  if (name === undefined) fail(`no command given: one of ${Object.keys(COMMANDS).join(', ')} (wasmformer --help)`);
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : fail(
    `unknown command ${JSON.stringify(name)}: the commands are ${Object.keys(COMMANDS).join(', ')} (wasmformer --help)`,
  );
  for (const flag of Object.keys(args.values) as Flag[]) {
    if (!command.flags.includes(flag)) fail(`--${flag} does not apply to ${name} (wasmformer --help)`);
  }
  if (name !== 'translate' && args.positionals.length > 1) fail(`${name} takes no text: ${JSON.stringify(args.positionals[1])}`);
  await command.run(args);
}

/**
 * The flags and positionals. A value may begin with a dash (`--max-new-tokens -1` is read as a
 * value, and then refused as a number, not as an unknown flag).
 */
function parse(argv: string[]): Args {
  const joined: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i].startsWith('--') ? argv[i].slice(2) : '';
    const takesValue = Object.hasOwn(OPTIONS, flag) && OPTIONS[flag as Flag].type === 'string';
    if (takesValue && i + 1 < argv.length && !argv[i + 1].startsWith('--')) joined.push(`${argv[i]}=${argv[++i]}`);
    else joined.push(argv[i]);
  }
  try {
    return parseArgs({ args: joined, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    const message = (e as Error).message;
    const unknown = /^Unknown option '([^']+)'/.exec(message);
    return fail(`${unknown ? `unknown option ${unknown[1]}` : message.split('\n')[0]} (wasmformer --help)`);
  }
}

async function version(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return `wasmformer ${pkg.version}`;
}

async function demo(args: Args): Promise<void> {
  const translator = await loadTranslator(demoModel, options(args));
  const samples = JSON.parse(await readFile(new URL('../models/en-de-messages/samples.json', import.meta.url), 'utf8')) as { items: { en: string }[] };
  const texts = samples.items.map((item) => item.en);
  const { model } = translator;
  console.log(`wasmformer demo: English to German program messages, a Marian model (${model.parameters.toLocaleString('en-US')} parameters, ${model.build} build, ${model.dtype} weights, ${threads(model)})`);
  console.log(`decoding as its generation_config.json says: beam search with ${model.config.generation.numBeams} beams\n`);
  // Warm-up: V8 runs the first calls of a WASM function in its baseline tier, then optimises it.
  await translator.translate(texts);
  let tokens = 0;
  let ms = 0;
  const width = Math.max(...texts.map((t) => t.length));
  for (const text of texts) {
    const result = await translateOne(translator, text);
    console.log(`${text.padEnd(width)}  ->  ${result.translation}   (${result.tokens} tokens, ${round(result.ms)} ms)`);
    tokens += result.tokens;
    ms += result.ms;
  }
  const start = performance.now();
  await translator.translate(texts);
  const batch = performance.now() - start;
  console.log(`\none at a time: ${round(ms)} ms; all ${texts.length} as one batch: ${round(batch)} ms (${round(ms / batch)}x)`);
  if (!process.stdin.isTTY) return;
  console.log('\nType an English message (a menu item, an error message, ...), or Ctrl-D to quit.');
  await eachLine(async (line) => {
    if (line.trim() === '') return;
    try {
      console.log(`  ->  ${(await translateOne(translator, line.trim())).translation}`);
    } catch (error) {
      if (!(error instanceof WasmformerError)) throw error;
      console.error(`wasmformer: ${error.message}`);
    }
  }, '> ');
}

/**
 * Translates the TEXT arguments, or else every line of stdin. With --json each input gets
 * exactly one line, in order, its error included ({"text", "error": {code, message}}), so a
 * script can match them; without it an error is one line on stderr and stops the command for
 * arguments, or skips the line for stdin.
 */
async function translate(args: Args): Promise<void> {
  const translator = await loadTranslator(args.values.model ?? demoModel, options(args));
  const texts = args.positionals.slice(1);
  const json = args.values.json === true;
  const decode = decoding(args);
  const print = async (text: string, fromStdin: boolean): Promise<void> => {
    try {
      const { translation, tokens, ms } = await translateOne(translator, text, decode);
      const tokensPerSecond = tokens === 0 ? 0 : round(tokens / (ms / 1000));
      if (json) console.log(JSON.stringify({ text, translation, tokens_per_second: tokensPerSecond }));
      else console.log(translation);
    } catch (error) {
      if (!(error instanceof WasmformerError) || !(json || fromStdin)) throw error;
      if (json) console.log(JSON.stringify({ text, error: { code: error.code, message: error.message } }));
      else console.error(`wasmformer: ${error.message}`);
    }
  };
  if (texts.length > 0) {
    for (const text of texts) await print(text, false);
    return;
  }
  await eachLine((line) => (json || line.trim() !== '' ? print(line, true) : Promise.resolve()));
}

/** One translation, timed, with its length in tokens (onToken's last report is the hypothesis chosen). */
async function translateOne(translator: Translator, text: string, decode: GenerateOptions = {}): Promise<{ translation: string; tokens: number; ms: number }> {
  const start = performance.now();
  let tokens = 0;
  const translation = await translator.translate(text, { ...decode, onToken: (_, index) => (tokens = index + 1) });
  return { translation, tokens, ms: performance.now() - start };
}

/** Calls f for each line of stdin, in order, one at a time. */
async function eachLine(f: (line: string) => Promise<void>, prompt = ''): Promise<void> {
  const lines = createInterface({ input: process.stdin, output: prompt ? process.stdout : undefined, prompt });
  lines.prompt();
  for await (const line of lines) {
    await f(line);
    lines.prompt();
  }
}

async function generate(args: Args): Promise<void> {
  const srcIds = integers(required(args, 'src-ids'), '--src-ids');
  const decode = decoding(args);
  const model = await open(args);
  const start = performance.now();
  const ids = await model.generate(srcIds, decode);
  const seconds = (performance.now() - start) / 1000;
  const tokensPerSecond = ids.length / seconds;
  if (args.values.json) console.log(JSON.stringify({ ids, tokens_per_second: round(tokensPerSecond) }));
  else console.log(`${ids.join(',')}\n(${ids.length} tokens, ${round(tokensPerSecond)} tokens/s, ${model.build} build)`);
}

async function info(args: Args): Promise<void> {
  const model = await open(args);
  const report = {
    config: model.config, parameters: model.parameters, dtype: model.dtype, memory_bytes: model.memoryBytes, build: model.build,
    threads: model.threads, threads_reason: model.threadsReason,
  };
  if (args.values.json) console.log(JSON.stringify(report));
  else {
    console.log(JSON.stringify(model.config, null, 2));
    console.log(`parameters: ${model.parameters.toLocaleString('en-US')}`);
    console.log(`weights: ${model.dtype === 'q8' ? 'q8 (int8 matrices, one scale per row)' : 'f32 (float32)'}`);
    console.log(`memory: ${(model.memoryBytes / 2 ** 20).toFixed(1)} MiB of WebAssembly memory (${model.build} build)`);
    console.log(`threads: ${threads(model)}`);
  }
}

/** How many threads run the model, and why fewer than asked where that is so. */
function threads(model: Model): string {
  const n = `${model.threads} thread${model.threads === 1 ? '' : 's'}`;
  return model.threadsReason === null ? n : `${n}: ${model.threadsReason}`;
}

/**
 * Writes a quantized copy of a model folder: model.safetensors with int8 matrices (io/quantize.ts)
 * and the folder's config and tokenizer files unchanged. Everything is read and quantized before
 * anything is written, so a model that cannot be quantized leaves --out as it was.
 */
async function quantize(args: Args): Promise<void> {
  const model = required(args, 'model');
  const out = required(args, 'out');
  const previous = await outFolder(model, out);
  const checked = await readModel(model);
  const file = quantizedSafetensors(checked);
  const copies: { name: string; bytes: Uint8Array }[] = [];
  for (const name of companionFiles(familyNamed(checked.config.family))) {
    const found = await readOptionalModelFile(model, name, 'BAD_FILE');
    if (found !== null) copies.push({ name, bytes: found.bytes });
  }
  for (const name of previous) await rm(join(out, name));
  await mkdir(out, { recursive: true });
  for (const { name, bytes } of copies) await writeFile(join(out, name), bytes);
  await writeFile(join(out, WEIGHTS_FILE), file.bytes);
  const bytes = (n: number) => `${n.toLocaleString('en-US')} bytes`;
  console.log(`${join(out, WEIGHTS_FILE)}: ${bytes(file.bytes.length)}, ${file.matrices} matrices as int8 (as float32: ${bytes(file.float32Bytes)})`);
  console.log(`copied ${copies.map((c) => c.name).join(', ')}`);
}

/**
 * The files of --out that quantize replaces: none for a new or empty folder; all of them for a
 * folder an earlier quantize wrote (nothing in it but the files quantize writes, its
 * model.safetensors marked by Q8_METADATA). Any other folder, a file, or the model's own
 * folder is refused, so quantize never overwrites anything else.
 */
async function outFolder(model: string, out: string): Promise<string[]> {
  const real = (p: string) => realpath(p).catch(() => resolve(p));
  if ((await real(model)) === (await real(out))) fail(`--out must not be --model (${out}): quantize writes a new folder beside the model's`);
  let names: string[];
  try {
    names = await readdir(out);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    return fail(code === 'ENOTDIR' ? `--out ${out} is a file, not a folder` : `--out ${out}: cannot read (${(e as Error).message})`);
  }
  const ours = new Set([WEIGHTS_FILE, ...allFamilies().flatMap(companionFiles)]);
  if (names.length > 0 && !(names.every((n) => ours.has(n)) && names.includes(WEIGHTS_FILE) && (await quantizedBy(join(out, WEIGHTS_FILE))))) {
    fail(`--out ${out} is not empty (${names.slice(0, 3).join(', ')}${names.length > 3 ? ', ...' : ''}), and not a folder wasmformer quantize wrote: give a new or an empty folder`);
  }
  return names;
}

/** Whether a safetensors file's metadata says quantize wrote it. */
async function quantizedBy(file: string): Promise<boolean> {
  const handle = await openFile(file, 'r');
  try {
    let head = new Uint8Array(8);
    await handle.read(head, 0, 8, 0);
    const size = (await handle.stat()).size;
    const needed = safetensorsHeaderBytes(head, size, file);
    head = new Uint8Array(needed);
    await handle.read(head, 0, needed, 0);
    const metadata = safetensorsMetadata(head, file);
    return Object.entries(Q8_METADATA).every(([key, value]) => metadata[key] === value);
  } catch {
    return false;
  } finally {
    await handle.close();
  }
}

function open(args: Args): Promise<Model> {
  return loadModel(required(args, 'model'), options(args));
}

/** The kernel build, dtype and threads asked for, and a progress line on a terminal while a large model loads. */
function options(args: Args): LoadOptions {
  const { build, dtype } = args.values;
  if (build !== undefined && build !== 'simd' && build !== 'relaxed') fail(`--build must be simd or relaxed, got ${JSON.stringify(build)}`);
  if (dtype !== undefined && dtype !== 'f32' && dtype !== 'q8') fail(`--dtype must be f32 or q8, got ${JSON.stringify(dtype)}`);
  const threads = args.values.threads;
  if (threads !== undefined && threads !== 'auto' && !(/^[1-9][0-9]?$/.test(threads) && Number(threads) <= MAX_THREADS)) {
    fail(`--threads must be auto or an integer in [1, ${MAX_THREADS}], got ${JSON.stringify(threads)}`);
  }
  const onProgress = (loaded: number, total: number): void => {
    if (!process.stderr.isTTY || total < 2 ** 24) return;
    process.stderr.write(`\rloading weights: ${(loaded / 2 ** 20).toFixed(0)} / ${(total / 2 ** 20).toFixed(0)} MiB`);
    if (loaded === total) process.stderr.write('\n');
  };
  return {
    build, onProgress, ...(dtype === undefined ? {} : { dtype }),
    ...(threads === undefined ? {} : { threads: threads === 'auto' ? 'auto' : Number(threads) }),
  };
}

function required(args: Args, name: 'model' | 'src-ids' | 'out'): string {
  const value = args.values[name];
  if (value === undefined) fail(`--${name} is required (wasmformer --help)`);
  return value;
}

/** Comma-separated integers, each written out: "7,,3" and "7,x" are errors, not [7, 0, 3]. */
function integers(text: string, flag: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  if (!parts.every((s) => /^-?\d+$/.test(s))) fail(`${flag}: expected comma-separated integers, got ${JSON.stringify(text)}`);
  return parts.map(Number);
}

/** The decoding flags given (--max-new-tokens, --num-beams); the rest is the model's generation config. */
function decoding(args: Args): GenerateOptions {
  const flag = (name: 'max-new-tokens' | 'num-beams'): number | undefined => {
    const value = args.values[name];
    return value === undefined ? undefined : count(value, `--${name}`);
  };
  return { maxNewTokens: flag('max-new-tokens'), numBeams: flag('num-beams') };
}

function count(text: string, flag: string): number {
  if (!/^\d+$/.test(text.trim())) fail(`${flag}: expected a non-negative integer, got ${JSON.stringify(text)}`);
  return Number(text);
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

/** Stops the command with one line naming what was wrong. */
function fail(message: string): never {
  throw new WasmformerError('BAD_ARGUMENT', message);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  // A bug rather than a mistake of the caller's still gets one line, and says so.
  const message = error instanceof WasmformerError ? error.message : `internal error, please report it: ${String((error as Error)?.message ?? error)}`;
  console.error(`wasmformer: ${message.split('\n')[0]}`);
  process.exitCode = 1;
});
