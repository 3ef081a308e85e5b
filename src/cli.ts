#!/usr/bin/env node
// The `wasmformer` command: decode with a model folder from the terminal.
import { parseArgs } from 'node:util';
import { WasmformerError } from './errors.js';
import { loadModel } from './model/load.js';
import type { Model } from './model/model.js';

const USAGE = `usage:
  wasmformer generate --model DIR --src-ids 5,6,7 [--max-new-tokens N] [--json]
  wasmformer info --model DIR
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

const COMMANDS: Record<string, (args: Args) => Promise<void>> = { generate, info };

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
  const build = args.values.build as 'simd' | 'relaxed' | undefined;
  return loadModel(required(args, 'model'), { build });
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
