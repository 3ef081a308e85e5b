#!/usr/bin/env node
// The `wasmformer` command: decode with a model folder from the terminal.
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WasmformerError } from './errors.js';
import { loadModel, type LoadOptions } from './model/load.js';
import type { Model } from './model/model.js';
import { loadTranslator, type Translator } from './translator.js';

/** The demo model that ships with the package: numbers in digits to English words. */
const DEMO_MODEL = fileURLToPath(new URL('../models/numbers/', import.meta.url));

const USAGE = `usage:
  wasmformer demo                    translate a few numbers with the demo model, then read lines
  wasmformer translate [--model DIR] [--json] [TEXT...]   (no TEXT: one per line of stdin)
  wasmformer generate --model DIR --src-ids 5,6,7 [--max-new-tokens N] [--json]
  wasmformer info --model DIR [--json]
options:
  --build simd|relaxed   the kernel build (default: the best this engine runs)
  --help                 this text`;

const OPTIONS = {
  model: { type: 'string' },
  'src-ids': { type: 'string' },
  'max-new-tokens': { type: 'string' },
  json: { type: 'boolean', default: false },
  build: { type: 'string' },
  help: { type: 'boolean', default: false },
} as const;

type Args = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;

const COMMANDS: Record<string, (args: Args) => Promise<void>> = { demo, translate, generate, info };

async function main(argv: string[]): Promise<void> {
  const args = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  const command = COMMANDS[args.positionals[0] ?? ''];
  if (args.values.help || command === undefined) {
    console.log(USAGE);
    if (!args.values.help) process.exitCode = 2;
    return;
  }
  await command(args);
}

async function demo(args: Args): Promise<void> {
  const translator = await loadTranslator(DEMO_MODEL, options(args));
  const samples = JSON.parse(await readFile(`${DEMO_MODEL}samples.json`, 'utf8')) as { items: { text: string }[] };
  const texts = samples.items.map((item) => item.text).filter((_, i) => i % 3 === 0);
  console.log(`wasmformer demo: numbers to English words (${translator.model.parameters.toLocaleString('en-US')} parameters, ${translator.model.build} build)\n`);
  // Warm-up: V8 runs the first calls of a WASM function in its baseline tier, then optimises it.
  for (const text of texts) await translator.translate(text);
  let tokens = 0;
  let ms = 0;
  for (const text of texts) {
    const result = await printTranslation(translator, text, false);
    tokens += result.tokens;
    ms += result.ms;
  }
  console.log(`\n${tokens} tokens in ${ms.toFixed(1)} ms: ${round(tokens / (ms / 1000))} tokens/s`);
  if (!process.stdin.isTTY) return;
  console.log('\nType a number (digits, up to 999,999), or Ctrl-D to quit.');
  await eachLine(async (line) => void (await printTranslation(translator, line, false)), '> ');
}

async function translate(args: Args): Promise<void> {
  const translator = await loadTranslator(args.values.model ?? DEMO_MODEL, options(args));
  const texts = args.positionals.slice(1);
  const print = async (text: string): Promise<void> => void (await printTranslation(translator, text, args.values.json));
  if (texts.length > 0) for (const text of texts) await print(text);
  else await eachLine(print);
}

/** Translates one text and prints it with its speed (as JSON on one line with --json). */
async function printTranslation(translator: Translator, text: string, json: boolean): Promise<{ tokens: number; ms: number }> {
  const start = performance.now();
  let tokens = 0;
  const translation = await translator.translate(text, { onToken: () => tokens++ });
  const ms = performance.now() - start;
  const tokensPerSecond = round(tokens / (ms / 1000));
  if (json) console.log(JSON.stringify({ text, translation, tokens_per_second: tokensPerSecond }));
  else console.log(`${text.padStart(9)}  ->  ${translation}   (${tokens} tokens, ${tokensPerSecond} tokens/s)`);
  return { tokens, ms };
}

/** Calls f for each non-empty line of stdin; a bad line prints its error and the loop goes on. */
async function eachLine(f: (line: string) => Promise<void>, prompt = ''): Promise<void> {
  const lines = createInterface({ input: process.stdin, output: prompt ? process.stdout : undefined, prompt });
  lines.prompt();
  for await (const line of lines) {
    if (line.trim() !== '') {
      try {
        await f(line.trim());
      } catch (error) {
        if (!(error instanceof WasmformerError)) throw error;
        console.error(`wasmformer: ${error.message}`);
      }
    }
    lines.prompt();
  }
}

async function generate(args: Args): Promise<void> {
  const model = await open(args);
  const srcIds = integers(required(args, 'src-ids'), '--src-ids');
  const maxNewTokens = args.values['max-new-tokens'] === undefined ? undefined : integers(args.values['max-new-tokens'], '--max-new-tokens')[0];
  const start = performance.now();
  const ids = await model.generate(srcIds, { maxNewTokens });
  const seconds = (performance.now() - start) / 1000;
  const tokensPerSecond = ids.length / seconds;
  if (args.values.json) console.log(JSON.stringify({ ids, tokens_per_second: round(tokensPerSecond) }));
  else console.log(`${ids.join(',')}\n(${ids.length} tokens, ${round(tokensPerSecond)} tokens/s, ${model.build} build)`);
}

async function info(args: Args): Promise<void> {
  const model = await open(args);
  const report = { config: model.config, parameters: model.parameters, memory_bytes: model.memoryBytes, build: model.build };
  if (args.values.json) console.log(JSON.stringify(report));
  else {
    console.log(JSON.stringify(model.config, null, 2));
    console.log(`parameters: ${model.parameters.toLocaleString('en-US')}`);
    console.log(`memory: ${(model.memoryBytes / 2 ** 20).toFixed(1)} MiB of WebAssembly memory (${model.build} build)`);
  }
}

function open(args: Args): Promise<Model> {
  return loadModel(required(args, 'model'), options(args));
}

/** The kernel build asked for, and a progress line on a terminal while a large model loads. */
function options(args: Args): LoadOptions {
  const build = args.values.build as 'simd' | 'relaxed' | undefined;
  const onProgress = (loaded: number, total: number): void => {
    if (!process.stderr.isTTY || total < 2 ** 24) return;
    process.stderr.write(`\rloading weights: ${(loaded / 2 ** 20).toFixed(0)} / ${(total / 2 ** 20).toFixed(0)} MiB`);
    if (loaded === total) process.stderr.write('\n');
  };
  return { build, onProgress };
}

function required(args: Args, name: 'model' | 'src-ids'): string {
  const value = args.values[name];
  if (value === undefined) throw new WasmformerError('BAD_ARGUMENT', `--${name} is required\n${USAGE}`);
  return value;
}

function integers(text: string, flag: string): number[] {
  const values = text.split(',').map((s) => Number(s.trim()));
  if (text.trim() === '' || !values.every(Number.isInteger)) {
    throw new WasmformerError('BAD_ARGUMENT', `${flag}: expected comma-separated integers, got "${text}"`);
  }
  return values;
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof WasmformerError) {
    console.error(`wasmformer: ${error.message}`);
    process.exitCode = 1;
  } else throw error;
});
