// Peers: wasmformer against onnxruntime-web (wasm backend) and onnxruntime-node on the same
// seeded random-weight models, batch 1, a fixed 32-token source and 64 FORCED greedy steps
// (argmax every step, never stopping at eos), each peer in two dtypes: fp32, and q8 (int8
// weights). onnxruntime's q8 is its quantize_dynamic on the exported graphs, as transformers.js
// makes its q8 models (tools/export_bench_models.py); ours is the folder `wasmformer quantize`
// writes (bench/models/<shape>-q8, made on first use), which loads as q8 with no option.
//
//   .venv/bin/python tools/export_bench_models.py     (writes bench/models/{base,small}/)
//   npm run bench -- peers [--json FILE] [--reps N] [--shapes base,small]
//
// Speed comes from one process in which the peers take turns (interleaved(), which the threads
// suite shares: one warm-up run each, checked against PyTorch's logits, a wait until V8 is done
// compiling in the background, then `reps` runs rotating the order, each from an idle process,
// not while another peer's workers still spin). Time to the first token and peak memory come
// from a fresh child process per (shape, peer, dtype), so that one peer's heap and caches never
// count for another.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeSync } from 'node:fs';
import { register } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { pick } from './columns.js';
import { MiB, ROOT, ensureQuantized, importDist, ourFolder, ourRuntime, peakRss, sizes } from './footprint.js';
import { argmax, median } from './measure.js';

export const MODELS = join(ROOT, 'bench', 'models');
/** onnxruntime-web's dist folder (resolved on import, so that a missing peer is installed by bench/index.js). */
const ORT_WEB_DIST = dirname(fileURLToPath(import.meta.resolve('onnxruntime-web')));
const ORT_PEERS = ['onnxruntime-web', 'onnxruntime-node'];
export const DTYPES = ['fp32', 'q8'];
/** The row's dtype as loadModel's `dtype` option and `model.dtype` name it. */
const OUR_DTYPE = { fp32: 'f32', q8: 'q8' };
/** The graphs of an onnxruntime peer; a q8 graph is the same name with _q8. */
const GRAPHS = ['encoder', 'cross_kv', 'decoder_step'];

/** Flags of this suite (node:util parseArgs specs). */
export const options = {
  reps: { type: 'string', default: '5' },
  shapes: { type: 'string', default: 'base,small' },
};

/** bench/index.js prints these: speed rows, runtime-size rows, then the headline ratios. */
export const tables = [
  {
    title: 'batch 1, 32-token source, 64 forced greedy steps, 1 thread; encode = encoder + cross-attention K/V;\n' +
      'tok/s = 64 / (encode + 64 steps); peak RSS = child process peak minus its RSS before loading the runtime;\n' +
      'ids = PyTorch: steps whose argmax is PyTorch\'s id, each step fed PyTorch\'s previous id, and max|dlogit| over them;\n' +
      'greedy prefix: steps the timed runs (each fed its own argmax) follow PyTorch\'s ids; ours/peer: ours of the same dtype',
    columns: pick('shape', 'peer', 'build', 'dtype', 'encoder_ms', 'ms_per_token', 'tokens_per_second', 'peak_rss_mb',
      'ids_match', 'greedy_prefix', 'max_abs_logit_diff', 'ours_over_peer_ms_per_token', 'ours_over_peer_tokens_per_second',
      'note'),
    rows: (row) => 'ms_per_token' in row,
  },
  {
    title: 'runtime bytes a browser downloads (gzip -9 per file); model bytes = the weight files the row loaded;\n' +
      'first token = import + load + encode + 1 step, fresh process',
    columns: pick('shape', 'peer', 'build', 'dtype', 'runtime_bytes', 'runtime_gzip_bytes', 'model_bytes', 'first_token_ms'),
    rows: (row) => 'first_token_ms' in row,
  },
  {
    title: 'ours q8 against onnxruntime-web fp32 (ours: the last build measured)',
    columns: pick('shape', 'headline', 'build', 'ours_over_peer_ms_per_token', 'ours_over_peer_tokens_per_second', 'note'),
    rows: (row) => 'headline' in row,
  },
];

// ------------------------------------------------------------------ the peers
// A peer is { encode(srcIds), step(token, pos) -> logits Float32Array [tgt_vocab], dispose() };
// encode also computes every decoder layer's cross-attention K and V; step(token, pos) feeds
// `token` at position `pos` and returns the logits of the next token.
// A contender is { peer, build, dtype }: a peer ('wasmformer', 'onnxruntime-web',
// 'onnxruntime-node'), our kernel build ('simd', 'relaxed'; null for onnxruntime) and a dtype.

/** Every contender, fp32 first, then q8; within a dtype ours (each build), then onnxruntime. */
function contenders(builds) {
  return DTYPES.flatMap((dtype) => [
    ...builds.map((build) => ({ peer: 'wasmformer', build, dtype })),
    ...ORT_PEERS.map((peer) => ({ peer, build: null, dtype })),
  ]);
}

/** Whether contender (or row) `c` is ours. */
const ours = (c) => c.peer === 'wasmformer';

/** The weight files contender `c` loads from `dir`. */
export function modelFiles(dir, c) {
  if (ours(c)) return [join(ourFolder(dir, c.dtype), 'model.safetensors')];
  return GRAPHS.map((g) => join(dir, `${g}${c.dtype === 'q8' ? '_q8' : ''}.onnx`));
}

/** Loads contender `c` on the model in `dir`. */
function loadPeer(c, dir, config) {
  return ours(c) ? loadWasmformer(dir, c) : ORT_LOADERS[c.peer](modelFiles(dir, c), config);
}

const ORT_LOADERS = {
  // Single-threaded: no worker.
  'onnxruntime-web': (files, config) => loadOrtWeb(files, config, 1),
  'onnxruntime-node': async (files, config) => {
    const ort = (await import('onnxruntime-node')).default;
    return loadOrt(ort, files, config, {
      executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential',
    });
  },
};

/**
 * onnxruntime-web on its wasm backend with `threads` threads (its pthreads are worker_threads in
 * Node), the fixed-width SIMD build, its .wasm/.mjs taken from the package's own dist folder in
 * node_modules. numThreads is read once, at a module instance's first session: each other count
 * gets an instance of its own. threads() is the count it runs, read back from its env: where it
 * cannot have threads, it falls back to one (with a console warning) and sets numThreads to 1.
 */
export async function loadOrtWeb(files, config, threads) {
  const ort = threads === 1 ? await import('onnxruntime-web') : await importInstance('onnxruntime-web', `threads${threads}`);
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.simd = true;
  ort.env.wasm.wasmPaths = pathToFileURL(ORT_WEB_DIST).href + '/';
  const impl = await loadOrt(ort, files, config, { executionProviders: ['wasm'] });
  const running = () => ort.env.wasm.numThreads;
  const reason = () => (running() < threads ? 'onnxruntime-web found no WebAssembly threads here and fell back to one' : null);
  return { ...impl, threads: running, threadsReason: reason };
}

// A resolve hook (module.register runs it on a loader thread of its own) that passes the query
// ?instance=<tag> of an importing file on to the files it imports, and so through the whole graph.
const INSTANCE_HOOK = `
export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  const tag = context.parentURL && new URL(context.parentURL).searchParams.get('instance');
  if (!tag || !resolved.url.startsWith('file:') || resolved.url.includes('?')) return resolved;
  return { ...resolved, url: \`\${resolved.url}?instance=\${encodeURIComponent(tag)}\` };
}`;
let instanceHook = false;

/**
 * Package `name` imported afresh, apart from `import(name)`: every module of its graph under the
 * query ?instance=<tag>. A query on the entry alone would not do for onnxruntime-web, which keeps
 * its env and backend registry in onnxruntime-common, a package of its own (a second entry
 * registering its backend there fails).
 */
async function importInstance(name, tag) {
  if (!instanceHook) register(`data:text/javascript,${encodeURIComponent(INSTANCE_HOOK)}`);
  instanceHook = true;
  return import(`${import.meta.resolve(name)}?instance=${encodeURIComponent(tag)}`);
}

/**
 * wasmformer from this package's build (dist/index.js), running kernel build `build` on the
 * folder of `dtype` with `threads` threads (1 unless given); threads() is model.threads, fewer
 * where helpers could not start or were retired, and threadsReason() why.
 */
export async function loadWasmformer(dir, { build, dtype, threads = 1 }) {
  const api = await importDist('index.js');
  const model = await api.loadModel(ourFolder(dir, dtype), { build, threads });
  if (model.dtype !== OUR_DTYPE[dtype]) {
    await model.dispose();
    throw new Error(`${ourFolder(dir, dtype)} loaded as dtype ${model.dtype}, not ${OUR_DTYPE[dtype]}`);
  }
  return {
    encode: (srcIds) => model.encode(srcIds),
    step: (token, pos) => model.decodeStep(token, pos),
    dispose: () => model.dispose(),
    threads: () => model.threads,
    threadsReason: () => model.threadsReason,
  };
}

/**
 * onnxruntime over the three exported graphs (`files`: encoder, cross_kv, decoder_step, as
 * modelFiles lists them); the KV cache goes in and out of every step.
 */
async function loadOrt(ort, files, config, sessionOptions) {
  const opts = { graphOptimizationLevel: 'all', ...sessionOptions };
  const sessions = [];
  for (const f of files) sessions.push(await ort.InferenceSession.create(f, opts));
  const [encoder, crossKv, decoderStep] = sessions;
  const dK = config.d_model / config.nhead;
  const int64 = (values, dims) => new ort.Tensor('int64', BigInt64Array.from(values, BigInt), dims);
  let cross; // [L, 2, 1, h, S, d_k]
  let past; // [L, 2, 1, h, P, d_k]
  return {
    async encode(srcIds) {
      const { memory } = await encoder.run({ src: int64(srcIds, [1, srcIds.length]) });
      cross = (await crossKv.run({ memory })).cross_kv;
      past = new ort.Tensor('float32', new Float32Array(0), [config.num_decoder_layers, 2, 1, config.nhead, 0, dK]);
    },
    async step(token, pos) {
      const out = await decoderStep.run({ token: int64([token], [1, 1]), pos: int64([pos], [1]), past_kv: past, cross_kv: cross });
      past = out.present_kv;
      return out.logits.data;
    },
    async dispose() {
      for (const s of sessions) await s.release();
    },
  };
}

// ------------------------------------------------------------------ one forced greedy decode

/**
 * Encodes ref.src_ids, then ref.steps greedy steps from bos, each fed the argmax of the step
 * before. With refLogits (PyTorch's, Float32Array [steps, V]) the run is teacher-forced
 * instead: each step is fed PyTorch's previous id, so that every step's logits compare with
 * PyTorch's on the same prefix, even where a q8 peer's argmax went another way; it then also
 * returns the largest |logit - PyTorch's logit|. Either way `ids` are the steps' argmaxes, and
 * `firstLogits` the first step's logits (fed bos, so the same in both kinds of run).
 */
async function decodeForced(peer, ref, bosId, refLogits) {
  const t0 = performance.now();
  await peer.encode(ref.src_ids);
  const encodeMs = performance.now() - t0;
  const stepMs = [];
  const ids = [];
  let token = bosId;
  let maxDiff = 0;
  let firstLogits = null;
  for (let pos = 0; pos < ref.steps; pos++) {
    const s = performance.now();
    const logits = await peer.step(token, pos);
    const id = argmax(logits);
    stepMs.push(performance.now() - s);
    ids.push(id);
    firstLogits ??= logits.slice(); // ours is a view of its memory, valid until the next step
    if (refLogits) maxDiff = Math.max(maxDiff, maxAbsDiff(logits, refLogits.subarray(pos * logits.length, (pos + 1) * logits.length)));
    token = refLogits ? ref.ids[pos] : id;
  }
  return { encodeMs, stepMs, totalMs: performance.now() - t0, ids, maxDiff, firstLogits };
}

function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** How many leading ids of `ids` are the same as `refIds` (PyTorch's, say). */
export function samePrefix(ids, refIds) {
  const differ = ids.findIndex((id, i) => id !== refIds[i]);
  return differ < 0 ? ids.length : differ;
}

// ------------------------------------------------------------------ the models on disk

/** Shape `shape`'s folder in bench/models, its config.json, reference.json and PyTorch's logits. */
export function readShape(shape) {
  const dir = join(MODELS, shape);
  const graphs = GRAPHS.flatMap((g) => [`${g}.onnx`, `${g}_q8.onnx`]);
  for (const f of ['config.json', 'model.safetensors', ...graphs, 'reference.json', 'reference_logits.bin']) {
    if (!existsSync(join(dir, f))) throw new Error(`${join(dir, f)} missing: run .venv/bin/python tools/export_bench_models.py`);
  }
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8'));
  const bytes = readFileSync(join(dir, 'reference_logits.bin'));
  const refLogits = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return { dir, config, ref, refLogits };
}

// ------------------------------------------------------------------ speed, in one process

/**
 * Loads every contender of `all` (load(c) -> a peer), warms each up with one run teacher-forced
 * on PyTorch's ids (`warm`: it compares logits with PyTorch's), waits for the process to be
 * idle, then runs them `reps` times in turns, each turn from an idle process again, each rep
 * starting one contender later (`runs`: greedy, each fed its own argmax; cpuMs, the process's
 * CPU time over the run, all its threads'). Returns the ones loaded, { c, impl, warm, runs },
 * still to be disposed, and the ones that failed to load, { c, note }.
 */
export async function interleaved(all, load, { ref, config, refLogits }, reps, onRep) {
  const loaded = [];
  const failed = [];
  for (const c of all) {
    try {
      loaded.push({ c, impl: await load(c), runs: [] });
    } catch (e) {
      failed.push({ c, note: firstLine(e) });
    }
  }
  for (const p of loaded) p.warm = await decodeForced(p.impl, ref, config.bos_id, refLogits);
  await settle(200, 30000);
  for (let rep = 0; rep < reps; rep++) {
    for (let i = 0; i < loaded.length; i++) {
      const p = loaded[(i + rep) % loaded.length];
      await settle(10, 1000);
      const cpu = process.cpuUsage();
      const run = await decodeForced(p.impl, ref, config.bos_id);
      const { user, system } = process.cpuUsage(cpu);
      p.runs.push({ ...run, cpuMs: (user + system) / 1000 });
    }
    onRep(rep);
  }
  return { loaded, failed };
}

/**
 * Waits until this process is idle, under 5% of a core over `windowMs`, or `limitMs` have gone
 * by. After the warm-ups V8 is still compiling optimized code for their hot wasm functions on
 * background threads; after a run, a threaded peer's workers may still be spinning for work
 * (onnxruntime-web's, for some 100 ms). Either would take a core from whichever contender runs
 * next.
 */
async function settle(windowMs, limitMs) {
  const t0 = performance.now();
  while (performance.now() - t0 < limitMs) {
    const cpu = process.cpuUsage();
    const start = performance.now();
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const { user, system } = process.cpuUsage(cpu);
    if ((user + system) / 1000 < 0.05 * (performance.now() - start)) return;
  }
}

/** The medians of timed runs: encode ms, ms per step, and tokens per second over encode + steps. */
export function speeds(runs, steps) {
  return {
    encoder_ms: median(runs.map((r) => r.encodeMs)),
    ms_per_token: median(runs.flatMap((r) => r.stepMs)),
    tokens_per_second: median(runs.map((r) => (steps * 1000) / r.totalMs)),
  };
}

/**
 * How far greedy `runs` of contender `c` follow PyTorch's ids (the fewest steps of any run) and,
 * for fp32, which is expected to keep them (q8 is not), a note where one does not.
 */
export function againstPyTorch(c, runs, ref) {
  const prefix = Math.min(...runs.map((r) => samePrefix(r.ids, ref.ids)));
  const run = runs.find((r) => samePrefix(r.ids, ref.ids) === prefix);
  const note = c.dtype === 'fp32' && prefix < ref.steps
    ? `ids differ from PyTorch's from step ${prefix} (${run.ids[prefix]} vs ${ref.ids[prefix]})` : undefined;
  return { prefix, note };
}

/** Speed rows of one shape: every contender that loads, warm-up then `reps` rotating runs. */
async function benchSpeed(shape, all, reps, log) {
  const model = readShape(shape);
  const { ref } = model;
  const { loaded, failed } = await interleaved(all, (c) => loadPeer(c, model.dir, model.config), model, reps,
    (rep) => log(`${shape}: rep ${rep + 1}/${reps}`));
  const rows = failed.map(({ c, note }) => speedRow(shape, c, { note }));
  for (const p of loaded) {
    await p.impl.dispose();
    const { prefix, note } = againstPyTorch(p.c, p.runs, ref);
    rows.push(speedRow(shape, p.c, {
      ...speeds(p.runs, ref.steps),
      ids_match: `${p.warm.ids.filter((id, i) => id === ref.ids[i]).length}/${ref.steps}`,
      greedy_prefix: prefix,
      max_abs_logit_diff: p.warm.maxDiff,
      note,
    }));
  }
  return rows.sort((a, b) => all.findIndex((c) => sameContender(c, a)) - all.findIndex((c) => sameContender(c, b)));
}

const sameContender = (c, row) => c.peer === row.peer && c.dtype === row.dtype && c.build === (row.build ?? null);

/** A row's first keys: shape, peer, our build (only on our rows), dtype. */
function rowOf(shape, c) {
  return { shape, peer: c.peer, ...(c.build ? { build: c.build } : {}), dtype: c.dtype };
}

/** One speed row with every key present (null when not measured), in a fixed order. */
function speedRow(shape, c, values) {
  const row = rowOf(shape, c);
  for (const key of ['encoder_ms', 'ms_per_token', 'tokens_per_second', 'peak_rss_mb', 'ids_match', 'greedy_prefix',
    'max_abs_logit_diff', ...RATIOS]) {
    row[key] = values[key] ?? null;
  }
  if (values.note) row.note = values.note;
  return row;
}

/** Our row of `dtype` that ratios use: the last build measured (relaxed when it runs, as loadModel picks by default). */
const oursIn = (rows, dtype) => rows.filter((r) => ours(r) && r.dtype === dtype && r.ms_per_token != null).at(-1);

/** The keys ratios() gives. */
const RATIOS = ['ours_over_peer_encoder_ms', 'ours_over_peer_ms_per_token', 'ours_over_peer_tokens_per_second'];

/** ours/peer (ms: above 1 means we are slower; tok/s: above 1, faster). */
function ratios(us, peer) {
  return {
    ours_over_peer_encoder_ms: us.encoder_ms / peer.encoder_ms,
    ours_over_peer_ms_per_token: us.ms_per_token / peer.ms_per_token,
    ours_over_peer_tokens_per_second: us.tokens_per_second / peer.tokens_per_second,
  };
}

/** ours/peer ratios on every measured onnxruntime row, against ours of the same dtype. */
function addRatios(rows) {
  for (const r of rows) {
    const us = oursIn(rows, r.dtype);
    if (us && !ours(r) && r.ms_per_token != null) Object.assign(r, ratios(us, r));
  }
}

/** The headline ratio: ours q8 against onnxruntime-web running the float graphs. */
function headlineRow(shape, rows) {
  const us = oursIn(rows, 'q8');
  const web = rows.find((r) => r.peer === 'onnxruntime-web' && r.dtype === 'fp32' && r.ms_per_token != null);
  const row = { shape, headline: 'wasmformer q8 / onnxruntime-web fp32', build: us?.build ?? null };
  const measured = us && web ? ratios(us, web) : {};
  for (const key of RATIOS) row[key] = measured[key] ?? null;
  if (!us || !web) row.note = `not measured: ${!us ? 'wasmformer q8' : 'onnxruntime-web fp32'}`;
  return row;
}

// ------------------------------------------------------------------ first token and memory, one child each

/**
 * In a fresh process: from before importing the runtime to the first decoded token (import and
 * instantiate, load the model, encode, one step), then the remaining forced steps; peak RSS is
 * the process's peak minus its RSS before the runtime was imported.
 */
async function childMain(c, shape) {
  const { dir, config, ref } = readShape(shape);
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  const impl = await loadPeer(c, dir, config);
  await impl.encode(ref.src_ids);
  const ids = [argmax(await impl.step(config.bos_id, 0))];
  const firstTokenMs = performance.now() - t0;
  for (let pos = 1; pos < ref.steps; pos++) ids.push(argmax(await impl.step(ids[pos - 1], pos)));
  const peak = peakRss();
  await impl.dispose();
  const result = { first_token_ms: firstTokenMs, peak_rss_mb: (peak - rss0) / MiB, greedy_prefix: samePrefix(ids, ref.ids) };
  writeSync(1, JSON.stringify(result) + '\n');
}

function runChild(c, shape) {
  const self = fileURLToPath(import.meta.url);
  const args = [...process.execArgv, self, '--child', c.peer, c.build ?? '-', c.dtype, shape];
  const child = spawnSync(process.execPath, args, { encoding: 'utf8' });
  const last = child.stdout.trim().split('\n').at(-1);
  if (child.status !== 0 || !last) return { error: firstLine({ message: child.stderr || `exit ${child.status}` }) };
  return JSON.parse(last);
}

// ------------------------------------------------------------------ bytes a browser downloads

/**
 * What a browser fetches to run each peer, whatever the dtype, keyed by peer (ours by build).
 * Ours: that build's .wasm and the package's JS bundled and minified (as onnxruntime-web ships
 * its own). onnxruntime-web: the wasm-only minified ESM bundle (glue included) and its SIMD
 * .wasm, which runs the q8 graphs too. onnxruntime-node is not a browser runtime: absent.
 */
async function runtimeSizes(builds) {
  const sized = { 'onnxruntime-web': sizes([join(ORT_WEB_DIST, 'ort.wasm.bundle.min.mjs'), join(ORT_WEB_DIST, 'ort-wasm-simd-threaded.wasm')]) };
  for (const build of builds) sized[build] = await ourRuntime(build);
  return sized;
}

// ------------------------------------------------------------------ entry points

/** The suite, called by bench/index.js with its parsed flags and the builds this engine runs. */
export async function run({ reps: repsFlag, shapes, builds }) {
  const reps = Number(repsFlag);
  if (!(reps >= 1)) throw new Error(`--reps must be a positive integer, got ${repsFlag}`);
  const log = (s) => console.error(s);
  const all = contenders(builds);

  const speedRows = [];
  const runtimeRows = [];
  const headlineRows = [];
  const runtime = await runtimeSizes(builds);
  for (const shape of shapes.split(',')) {
    ensureQuantized(join(MODELS, shape));
    const rows = await benchSpeed(shape, all, reps, log);
    addRatios(rows);
    for (const row of rows) {
      const c = all.find((x) => sameContender(x, row));
      let child = {};
      if (row.ms_per_token != null) {
        log(`${shape}: first token and peak memory of ${[c.peer, c.build, c.dtype].filter(Boolean).join(' ')} (child process)`);
        child = runChild(c, shape);
        row.peak_rss_mb = child.peak_rss_mb ?? null;
        if (child.error) row.note = `child: ${child.error}`;
        else if (child.greedy_prefix !== row.greedy_prefix) row.note = `the child process's greedy prefix is ${child.greedy_prefix}`;
      }
      const sized = runtime[c.build ?? c.peer];
      runtimeRows.push({
        ...rowOf(shape, c),
        runtime_bytes: sized?.runtime_bytes ?? null,
        runtime_gzip_bytes: sized?.runtime_gzip_bytes ?? null,
        model_bytes: row.ms_per_token != null ? modelFiles(join(MODELS, shape), c).reduce((n, f) => n + statSync(f).size, 0) : null,
        first_token_ms: child.first_token_ms ?? null,
      });
    }
    speedRows.push(...rows);
    headlineRows.push(headlineRow(shape, rows));
  }
  return [...speedRows, ...runtimeRows, ...headlineRows];
}

export function firstLine(e) {
  return String(e?.message ?? e).trim().split('\n')[0];
}

// A child process measuring one contender's first token and peak memory (see runChild).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href && process.argv[2] === '--child') {
  const [peer, build, dtype, shape] = process.argv.slice(3);
  await childMain({ peer, build: build === '-' ? null : build, dtype }, shape);
}
