// Loading a model: a base-shape Hugging Face Marian folder (opus-mt-en-de's shape: d_model 512,
// 6+6 layers, 8 heads, FFN 2048, vocabulary 58101; float32, and float16 as the tc-big models
// ship) against the tutorial layout of the same size, written to disk as safetensors; and as q8:
// the float32 folder loaded with dtype 'q8' (quantized at load), and the folder `wasmformer
// quantize` writes from it (I8). Each row is a fresh child process per repetition (peers
// interleaved): load_ms from loadModel(folder) to its return, first_token_ms to the first greedy
// token of a 32-token source after that, the peak RSS of the process, the WebAssembly memory.
// Rows: { model, dtype, runs, file_mb, parameters, load_ms, first_token_ms, peak_rss_mb, wasm_mb }.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MiB, peakRss } from './footprint.js';
import { BenchError, median } from './measure.js';
import { marianConfig, syntheticConfig, syntheticFolder } from './synthetic.js';

export const options = {
  reps: { type: 'string', default: '5' },
};

export const columns = [
  { key: 'model', title: 'model' },
  { key: 'dtype', title: 'file dtype' },
  { key: 'runs', title: 'runs' },
  { key: 'file_mb', title: 'file MB', digits: 0 },
  { key: 'parameters', title: 'parameters', digits: 0 },
  { key: 'load_ms', title: 'load ms', digits: 0 },
  { key: 'first_token_ms', title: 'first token ms', digits: 0 },
  { key: 'peak_rss_mb', title: 'peak RSS MB', digits: 0 },
  { key: 'wasm_mb', title: 'wasm MB', digits: 0 },
];

const VOCAB = 58101;

/** The folders to time: name, dtype, config. */
function variants() {
  return [
    { model: 'marian (opus-mt-en-de shape)', dtype: 'F32', config: marianConfig('base', VOCAB) },
    { model: 'marian (opus-mt-en-de shape)', dtype: 'F16', config: marianConfig('base', VOCAB) },
    { model: 'marian (opus-mt-en-de shape)', dtype: 'F32', runs: 'q8', config: marianConfig('base', VOCAB) },
    { model: 'marian (opus-mt-en-de shape)', dtype: 'I8', quantized: true, config: marianConfig('base', VOCAB) },
    // Its generator tied to the target embedding (as Marian's is), but two embedding matrices:
    // the tutorial layout cannot share one between source and target.
    { model: 'tutorial layout, same shape', dtype: 'F32', optional: false,
      config: { ...syntheticConfig('base'), src_vocab_size: VOCAB, tgt_vocab_size: VOCAB, max_len: 512 } },
  ];
}

export async function run({ reps }) {
  const root = mkdtempSync(join(tmpdir(), 'wasmformer-load-'));
  try {
    const folders = variants().map((v, i) => {
      const dir = join(root, String(i));
      mkdirSync(dir);
      const { weights } = syntheticFolder(v.config, 1, v.quantized ? 'F32' : v.dtype, { optional: v.optional ?? true });
      writeFileSync(join(dir, 'config.json'), JSON.stringify(v.config));
      writeFileSync(join(dir, 'model.safetensors'), weights);
      const folder = v.quantized ? quantize(dir) : dir;
      return { ...v, dir: folder, file_mb: statSync(join(folder, 'model.safetensors')).size / 1e6 };
    });
    const samples = folders.map(() => []);
    for (let r = 0; r < Number(reps); r++) {
      folders.forEach((f, i) => samples[i].push(child(f.dir, f.runs)));
      console.error(`load: round ${r + 1}/${reps}`);
    }
    return folders.map((f, i) => ({
      model: f.model, dtype: f.dtype, runs: samples[i][0].dtype, file_mb: f.file_mb, parameters: samples[i][0].parameters,
      load_ms: median(samples[i].map((s) => s.loadMs)), first_token_ms: median(samples[i].map((s) => s.firstMs)),
      peak_rss_mb: median(samples[i].map((s) => s.rssMb)), wasm_mb: samples[i][0].wasmMb,
    }));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** `wasmformer quantize` of dir into dir-q8. */
function quantize(dir) {
  const out = `${dir}-q8`;
  const cli = join(fileURLToPath(new URL('..', import.meta.url)), 'dist', 'cli.js');
  const run = spawnSync(process.execPath, [cli, 'quantize', '--model', dir, '--out', out], { encoding: 'utf8' });
  if (run.status !== 0) throw new BenchError(`load: wasmformer quantize failed: ${run.stderr}`);
  return out;
}

/** One fresh process: load the folder (as dtype when given), then decode one token. */
function child(dir, dtype) {
  const self = fileURLToPath(import.meta.url);
  const out = spawnSync(process.execPath, [self, '--child', dir, ...(dtype ? [dtype] : [])], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`load child failed: ${out.stderr}`);
  return JSON.parse(out.stdout);
}

if (process.argv[2] === '--child') {
  const { loadModel } = await import(pathToFileURL(join(fileURLToPath(new URL('..', import.meta.url)), 'dist', 'index.js')).href);
  const t0 = performance.now();
  const model = await loadModel(process.argv[3], process.argv[4] ? { dtype: process.argv[4] } : {});
  const t1 = performance.now();
  const src = [...Array.from({ length: 31 }, (_, i) => 3 + ((i * 7919) % 50000)), model.config.eosId];
  await model.generate(src, { maxNewTokens: 1 });
  const t2 = performance.now();
  console.log(JSON.stringify({
    loadMs: t1 - t0, firstMs: t2 - t1, rssMb: peakRss() / MiB, parameters: model.parameters,
    dtype: model.dtype, wasmMb: model.memoryBytes / 1e6,
  }));
}
