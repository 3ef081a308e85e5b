// Translation side by side with transformers.js (@huggingface/transformers 4.3), as its users run
// it, on the same Marian weights: the German demo (models/en-de-messages) and a seeded model of
// opus-mt-en-de's shape (d_model 512, 6+6 layers, vocabulary 58101), each exported by
// tools/export_transformersjs.py into one folder that both libraries load: the hub's files
// (ours) beside tokenizer.json and onnx/{encoder_model,decoder_model_merged}[_quantized].onnx
// (transformers.js's), with transformers' (Python) greedy ids of the sources in reference.json.
//
//   .venv/bin/python tools/export_transformersjs.py    (writes bench/models/transformersjs/)
//   npm run bench -- translate [--json FILE] [--sentences 100] [--warmup 20] [--models demo-de,opus-shape]
//
// Contenders, per model: wasmformer (the build loadModel picks) fp32 and q8 (the folder
// `wasmformer quantize` writes beside, made on first use), greedy and beam 4; transformers.js,
// greedy only (its generate() keeps one hypothesis whatever num_beams: it has no beam search),
// fp32 and q8 (its _quantized graphs), on onnxruntime-web (wasm, one thread, the asyncify build
// its browser bundle fetches; in Node it would take onnxruntime-node, so ours is injected as
// its bundle would have it) and on onnxruntime-node (its Node default, CPU, one thread).
//
// Speed comes from one process per model: every contender warms up for --warmup seconds
// (onnxruntime-web's wasm runs several times slower until V8 has tiered it up), then they take
// turns, sentence by sentence, over the sources (text in, text out). sentences/s: sources over
// the summed translate() times; ms/token: the time after each source's first generated token
// over the tokens after it. First token and peak RSS come from a fresh process per contender:
// from before the runtime is imported to the first generated token of the first source; then
// the first 10 sources (its files read just before, so that they come from the page cache);
// peak RSS is that process's whole peak (VmHWM). Download: the files a browser fetches, raw
// bytes: the runtime (JS and wasm) and the model files the loader reads.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { pick } from './columns.js';
import { MiB, ROOT, ensureQuantized, importDist, ourFolder, ourRuntime, peakRss } from './footprint.js';
import { BenchError } from './measure.js';

const MODELS = join(ROOT, 'bench', 'models', 'transformersjs');
const DTYPES = ['fp32', 'q8'];
/** The row's dtype as loadModel's `dtype` option and `model.dtype` name it. */
const OUR_DTYPE = { fp32: 'f32', q8: 'q8' };
const CHILD_SENTENCES = 10;
const TJS_ENTRY = fileURLToPath(import.meta.resolve('@huggingface/transformers'));
const TJS_DIST = dirname(TJS_ENTRY);
/** The onnxruntime-web transformers.js depends on (its browser bundle has this one inside). */
const TJS_ORT_WEB = dirname(createRequire(TJS_ENTRY).resolve('onnxruntime-web'));
/** What transformers.js fetches in a browser: its bundle, then onnxruntime-web's asyncify build from a CDN. */
const TJS_BROWSER_RUNTIME = [join(TJS_DIST, 'transformers.min.js'), join(TJS_ORT_WEB, 'ort-wasm-simd-threaded.asyncify.mjs'), join(TJS_ORT_WEB, 'ort-wasm-simd-threaded.asyncify.wasm')];
/** The global through which transformers.js takes an onnxruntime instead of its own (backends/onnx.js). */
const ORT_SYMBOL = Symbol.for('onnxruntime');

/** Flags of this suite (node:util parseArgs specs). */
export const options = {
  sentences: { type: 'string', default: '100' },
  warmup: { type: 'string', default: '20' },
  models: { type: 'string', default: 'demo-de,opus-shape' },
};

/** bench/index.js prints these: the rows, then the targets as ratios (not in the JSON). */
export const tables = [
  {
    title: 'text in, text out, batch 1, 1 thread; transformers.js has no beam search (its generate() keeps one hypothesis);\n' +
      'ms/token after the first token; first token and peak RSS: a fresh process; download: runtime + model files, raw bytes;\n' +
      'ids = transformers: sources whose ids are transformers\' (Python, float32) greedy ids',
    columns: pick('model', 'peer', 'backend', 'dtype', 'search', 'sentences_per_second', 'ms_per_token', 'first_token_ms',
      'peak_rss_mb', 'download_mb', 'identical', 'note'),
    derive: (rows) => rows.map((r) => ({ ...r, download_mb: r.download_bytes == null ? null : r.download_bytes / 1e6 })),
  },
  {
    title: 'targets: wasmformer against transformers.js (ratios above 1 are ours ahead; download, memory, first token: ours over theirs)',
    columns: pick('model', 'target', 'ratio', 'goal', 'met'),
    derive: (rows) => targets(rows),
  },
];

// ------------------------------------------------------------------ the contenders
// A contender is { peer, backend, dtype, search }. Loaded, it is
// { translate(text, onFirstToken) -> { srcIds, ids, steps }, dispose() }: srcIds the source's
// ids, ids the generated ones without the start token and the final eos, steps the tokens
// generated (eos included); onFirstToken is called when the first one is known.

function contenders() {
  return DTYPES.flatMap((dtype) => [
    ...['greedy', 'beam4'].map((search) => ({ peer: 'wasmformer', backend: 'wasm', dtype, search })),
    ...['wasm', 'onnxruntime-node'].map((backend) => ({ peer: 'transformers.js', backend, dtype, search: 'greedy' })),
  ]);
}

const ours = (c) => c.peer === 'wasmformer';
const label = (c) => `${c.peer} ${c.backend} ${c.dtype} ${c.search}`;

/** Loads contender `c` on model `name`; `generation`: reference.json's generation settings. */
function load(c, name, generation) {
  return ours(c) ? loadWasmformer(join(MODELS, name), c, generation) : loadTransformersJs(name, c, generation);
}

/** Our translator on the folder of c.dtype, decoding by c.search (the rest from generation_config.json, as transformers'). */
async function loadWasmformer(dir, c, generation) {
  const { loadTranslator } = await importDist('index.js');
  const translator = await loadTranslator(ourFolder(dir, c.dtype));
  if (translator.model.dtype !== OUR_DTYPE[c.dtype]) {
    translator.dispose();
    throw new Error(`${ourFolder(dir, c.dtype)} loaded as dtype ${translator.model.dtype}, not ${OUR_DTYPE[c.dtype]}`);
  }
  const options = { numBeams: c.search === 'beam4' ? 4 : 1, ...(generation.max_new_tokens ? { maxNewTokens: generation.max_new_tokens } : {}) };
  return {
    build: translator.model.build,
    async translate(text, onFirstToken) {
      const srcIds = translator.tokenizer.encode(text);
      let told = false; // a beam search reports its leading hypothesis each step
      const onToken = () => told || ((told = true), onFirstToken());
      const ids = await translator.model.generate(srcIds, { ...options, onToken });
      translator.tokenizer.decode(ids); // text out: the detokenization is part of the timed call
      return { srcIds: [...srcIds], ids, steps: ids.length + 1 }; // forced_eos_token_id: every output ends in eos
    },
    dispose: () => translator.dispose(),
  };
}

/** transformers.js's tokenizer and model from the folder `name`, on c.backend, its c.dtype graphs. */
async function loadTransformersJs(name, c, generation) {
  const tjs = await transformersJs(c.backend);
  const web = c.backend === 'wasm';
  // With an injected onnxruntime it knows no device: 'auto' asks for none, the session options name the wasm one.
  const model = await tjs.AutoModelForSeq2SeqLM.from_pretrained(name, {
    dtype: c.dtype,
    device: web ? 'auto' : 'cpu',
    session_options: web ? { executionProviders: ['wasm'] } : { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' },
  });
  const tokenizer = await tjs.AutoTokenizer.from_pretrained(name);
  const options = { num_beams: 1, do_sample: false, ...(generation.max_new_tokens ? { max_new_tokens: generation.max_new_tokens } : {}) };
  return {
    async translate(text, onFirstToken) {
      const inputs = tokenizer(text);
      let puts = 0; // the first put() is the start token, the second the first generated one
      const streamer = { put: () => ++puts === 2 && onFirstToken(), end: () => {} };
      const output = await model.generate({ ...inputs, ...options, streamer });
      const all = output.tolist()[0].slice(1).map(Number);
      tokenizer.decode(all, { skip_special_tokens: true }); // text out, as ours
      const srcIds = inputs.input_ids.tolist()[0].map(Number);
      return { srcIds, ids: withoutEos(all, model.config.eos_token_id), steps: all.length };
    },
    dispose: () => model.dispose(),
  };
}

const tjsInstances = new Map();

/**
 * transformers.js for a backend: one module instance each (imported under its own URL), the
 * wasm one with onnxruntime-web injected (one thread, its asyncify build as the browser bundle
 * fetches it, from the package instead of the CDN), loading models from bench/models/transformersjs only.
 */
function transformersJs(backend) {
  if (!tjsInstances.has(backend)) tjsInstances.set(backend, importTransformersJs(backend));
  return tjsInstances.get(backend);
}

async function importTransformersJs(backend) {
  if (backend === 'wasm') {
    const ort = await import(pathToFileURL(join(TJS_ORT_WEB, 'ort.node.min.mjs')).href);
    ort.env.wasm.numThreads = 1;
    const file = (ext) => pathToFileURL(join(TJS_ORT_WEB, `ort-wasm-simd-threaded.asyncify.${ext}`)).href;
    ort.env.wasm.wasmPaths = { mjs: file('mjs'), wasm: file('wasm') };
    globalThis[ORT_SYMBOL] = ort;
  }
  try {
    const tjs = await import(`${pathToFileURL(TJS_ENTRY).href}?backend=${backend}`);
    tjs.env.localModelPath = `${MODELS}/`;
    tjs.env.allowRemoteModels = false;
    tjs.env.useWasmCache = false; // its cache fetches the wasm by URL, which Node cannot for a file
    tjs.env.logLevel = tjs.LogLevel.ERROR; // not the warning, per tokenizer, that Marian has no "fast" tokenizer
    return tjs;
  } finally {
    delete globalThis[ORT_SYMBOL];
  }
}

function withoutEos(ids, eos) {
  return ids.at(-1) === eos ? ids.slice(0, -1) : ids;
}

// ------------------------------------------------------------------ the models on disk

function readModel(name) {
  const dir = join(MODELS, name);
  const needed = ['config.json', 'model.safetensors', 'tokenizer.json', 'reference.json',
    ...['encoder_model', 'decoder_model_merged'].flatMap((g) => [`onnx/${g}.onnx`, `onnx/${g}_quantized.onnx`])];
  for (const f of needed) {
    if (!existsSync(join(dir, f))) throw new BenchError(`${join(dir, f)} missing: run .venv/bin/python tools/export_transformersjs.py`);
  }
  const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8'));
  const eos = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).eos_token_id;
  ref.items = ref.items.map((item) => ({ ...item, ids: withoutEos(item.greedy_ids, eos) }));
  return { dir, ref };
}

/** The model files contender `c` reads from the folder `dir`: ours of its dtype, transformers.js's of its dtype. */
async function modelFiles(c, dir) {
  if (ours(c)) {
    const { companionFiles } = await importDist('io/quantize.js');
    const { familyOf } = await importDist('families/index.js');
    const folder = ourFolder(dir, c.dtype);
    const family = familyOf(JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8')), 'config.json');
    return [...companionFiles(family), 'model.safetensors'].map((f) => join(folder, f)).filter(existsSync);
  }
  const suffix = c.dtype === 'q8' ? '_quantized' : '';
  return ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json',
    `onnx/encoder_model${suffix}.onnx`, `onnx/decoder_model_merged${suffix}.onnx`].map((f) => join(dir, f));
}

/** The bytes a browser fetches for contender `c` (its runtime and model files), or null: onnxruntime-node is no browser runtime. */
async function downloadBytes(c, dir, build) {
  if (c.backend === 'onnxruntime-node') return null;
  const runtime = ours(c) ? (await ourRuntime(build)).runtime_bytes : total(TJS_BROWSER_RUNTIME);
  return runtime + total(await modelFiles(c, dir));
}

const total = (files) => files.reduce((n, f) => n + statSync(f).size, 0);

// ------------------------------------------------------------------ speed, in one process

/** One source through a loaded contender, timed. */
async function timed(impl, text) {
  const t0 = performance.now();
  let first = null;
  const out = await impl.translate(text, () => (first = performance.now()));
  const end = performance.now();
  return { ...out, ms: end - t0, afterFirstMs: end - (first ?? end) };
}

/** The speed rows of one model: warm-up, then the contenders in turns over the sources. */
async function benchSpeed(name, all, count, warmupSeconds, log) {
  const { dir, ref } = readModel(name);
  const items = ref.items.slice(0, count);
  const loaded = [];
  const failed = [];
  for (const c of all) {
    try {
      loaded.push({ c, impl: await load(c, name, ref.generation), runs: [] });
    } catch (e) {
      failed.push({ c, note: firstLine(e) });
    }
  }
  for (const p of loaded) {
    const t0 = performance.now();
    for (let i = 0; performance.now() - t0 < warmupSeconds * 1000 || i < 2; i++) await p.impl.translate(items[i % items.length].en, () => {});
    log(`${name}: warmed up ${label(p.c)}`);
  }
  for (let i = 0; i < items.length; i++) {
    for (let j = 0; j < loaded.length; j++) {
      const p = loaded[(i + j) % loaded.length];
      p.runs.push(await timed(p.impl, items[i].en));
    }
    if ((i + 1) % 10 === 0) log(`${name}: ${i + 1}/${items.length} sources`);
  }
  for (const p of loaded) await p.impl.dispose();
  return [
    ...loaded.map((p) => speedRow(name, p.c, p.runs, items, p.impl.build)),
    ...failed.map(({ c, note }) => ({ ...row(name, c), note })),
  ];
}

/** A row's keys in the JSON's order, null where not measured. */
function row(model, c) {
  return {
    model, peer: c.peer, backend: c.backend, dtype: c.dtype, search: c.search,
    sentences_per_second: null, ms_per_token: null, first_token_ms: null, peak_rss_mb: null, download_bytes: null,
    same_as_transformers: null, identical: null, build: null,
  };
}

function speedRow(model, c, runs, items, build) {
  const sum = (f) => runs.reduce((n, r) => n + f(r), 0);
  const same = runs.filter((r, i) => sameIds(r.ids, items[i].ids)).length;
  const badSources = runs.filter((r, i) => !sameIds(r.srcIds, items[i].input_ids)).length;
  const greedy = c.search === 'greedy';
  return {
    ...row(model, c),
    sentences_per_second: (runs.length * 1000) / sum((r) => r.ms),
    ms_per_token: sum((r) => r.afterFirstMs) / sum((r) => r.steps - 1),
    same_as_transformers: greedy ? same === runs.length : null,
    identical: greedy ? `${same}/${runs.length}` : null,
    build: build ?? null,
    ...(badSources ? { note: `source ids differ from transformers' on ${badSources} of ${runs.length}` } : {}),
  };
}

const sameIds = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

// ------------------------------------------------------------------ first token and memory, one child each

/** In a fresh process: import, load, the first source's first token; then the first CHILD_SENTENCES sources; the peak RSS. */
async function childMain(c, name) {
  const { ref } = readModel(name);
  const t0 = performance.now();
  const impl = await load(c, name, ref.generation);
  let firstTokenMs = null;
  await impl.translate(ref.items[0].en, () => (firstTokenMs = performance.now() - t0));
  for (const item of ref.items.slice(1, CHILD_SENTENCES)) await impl.translate(item.en, () => {});
  const peak = peakRss();
  await impl.dispose();
  writeSync(1, JSON.stringify({ first_token_ms: firstTokenMs, peak_rss_mb: peak / MiB }) + '\n');
}

function runChild(c, name) {
  const self = fileURLToPath(import.meta.url);
  const args = [...process.execArgv, self, '--child', name, c.peer, c.backend, c.dtype, c.search];
  const child = spawnSync(process.execPath, args, { encoding: 'utf8' });
  const last = child.stdout.trim().split('\n').at(-1);
  if (child.status !== 0 || !last) return { error: firstLine({ message: child.stderr || `exit ${child.status}` }) };
  return JSON.parse(last);
}

// ------------------------------------------------------------------ the targets

/** Ratios of the rows that the targets compare, per model. */
function targets(rows) {
  const out = [];
  for (const model of [...new Set(rows.map((r) => r.model))]) {
    const find = (peer, backend, dtype, search = 'greedy') => rows.find((r) => r.model === model && r.peer === peer && r.backend === backend && r.dtype === dtype && r.search === search);
    const us = (dtype, search) => find('wasmformer', 'wasm', dtype, search);
    const them = (dtype, backend = 'wasm') => find('transformers.js', backend, dtype);
    const add = (target, a, b, key, goal, meets, invert = false) => {
      const x = a?.[key];
      const y = b?.[key];
      const ratio = x != null && y != null ? (invert ? y / x : x / y) : null;
      out.push({ model, target, ratio, goal, met: ratio == null ? '-' : meets(ratio) ? 'yes' : 'no' });
    };
    add('q8 greedy sentences/s, ours / transformers.js wasm q8', us('q8', 'greedy'), them('q8'), 'sentences_per_second', '>= 3', (r) => r >= 3);
    add('q8 greedy ms/token, onnxruntime-node q8 / ours', us('q8', 'greedy'), them('q8', 'onnxruntime-node'), 'ms_per_token', '>= 1 (beyond)', (r) => r >= 1, true);
    add('fp32 greedy sentences/s, ours / transformers.js wasm fp32', us('fp32', 'greedy'), them('fp32'), 'sentences_per_second', '>= 1.8', (r) => r >= 1.8);
    add('fp32 beam 4 sentences/s, ours / transformers.js wasm fp32 greedy', us('fp32', 'beam4'), them('fp32'), 'sentences_per_second', '> 1', (r) => r > 1);
    add('q8 download, ours / transformers.js', us('q8', 'greedy'), them('q8'), 'download_bytes', '<= 0.6', (r) => r <= 0.6);
    for (const dtype of DTYPES) {
      add(`${dtype} peak RSS, ours / transformers.js wasm`, us(dtype, 'greedy'), them(dtype), 'peak_rss_mb', '<= 0.25', (r) => r <= 0.25);
      add(`${dtype} first token, ours / transformers.js wasm`, us(dtype, 'greedy'), them(dtype), 'first_token_ms', '<= 0.5', (r) => r <= 0.5);
    }
    const fp32 = rows.filter((r) => r.model === model && r.dtype === 'fp32' && r.search === 'greedy');
    out.push({ model, target: 'fp32 greedy ids = transformers\' (every fp32 greedy row)', ratio: null, goal: 'all',
      met: fp32.every((r) => r.same_as_transformers) ? 'yes' : `no (${fp32.map((r) => r.identical).join(', ')})` });
  }
  return out;
}

// ------------------------------------------------------------------ entry points

/** The suite, called by bench/index.js with its parsed flags. */
export async function run({ sentences, warmup, models }) {
  const count = Number(sentences);
  const warmupSeconds = Number(warmup);
  if (!Number.isInteger(count) || count < 1) throw new Error(`--sentences must be a positive integer, got ${sentences}`);
  if (!(warmupSeconds >= 0)) throw new Error(`--warmup must be seconds (>= 0), got ${warmup}`);
  const log = (s) => console.error(s);
  const all = contenders();
  const rows = [];
  for (const name of models.split(',')) {
    const { dir } = readModel(name);
    ensureQuantized(dir);
    const speed = await benchSpeed(name, all, count, warmupSeconds, log);
    for (const r of speed) {
      const c = all.find((x) => label(x) === label(r));
      if (r.sentences_per_second == null) continue;
      log(`${name}: first token and peak memory of ${label(c)} (child process)`);
      // Read once here, so that the child finds them in the page cache (after the speed run's
      // reads of every other file, some may have been dropped): it measures the runtime, not the disk.
      for (const f of await modelFiles(c, dir)) readFileSync(f);
      const child = runChild(c, name);
      if (child.error) r.note = `child: ${child.error}`;
      r.first_token_ms = child.first_token_ms ?? null;
      r.peak_rss_mb = child.peak_rss_mb ?? null;
      r.download_bytes = await downloadBytes(c, dir, r.build);
    }
    rows.push(...speed);
  }
  return rows;
}

function firstLine(e) {
  return String(e?.message ?? e).trim().split('\n')[0];
}

// A child process measuring one contender's first token and peak memory (see runChild).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href && process.argv[2] === '--child') {
  const [name, peer, backend, dtype, search] = process.argv.slice(3);
  await childMain({ peer, backend, dtype, search }, name);
}
