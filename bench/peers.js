// Peers: wasmformer against onnxruntime-web (wasm backend) and onnxruntime-node on the same
// seeded random-weight models, batch 1, a fixed 32-token source and 64 FORCED greedy steps
// (argmax every step, never stopping at eos).
//
//   /usr/bin/python3 tools/export_bench_models.py     (writes bench/models/{base,small}/)
//   npm run bench -- peers [--json FILE] [--reps N] [--shapes base,small]
//
// Speed comes from one process in which the peers take turns (one warm-up run each, checked
// against PyTorch's logits, then `reps` runs rotating the order). Time to the first token and
// peak memory come from a fresh child process per (shape, peer), so that one peer's heap and
// caches never count for another.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { constants, gzipSync } from 'node:zlib';
import { rolldown } from 'rolldown';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MODELS = join(ROOT, 'bench', 'models');
const DIST = join(ROOT, 'dist');
const ORT_PEERS = ['onnxruntime-web', 'onnxruntime-node'];
const MiB = 2 ** 20;

/** Flags of this suite (node:util parseArgs specs). */
export const options = {
  reps: { type: 'string', default: '5' },
  shapes: { type: 'string', default: 'base,small' },
};

const COLUMNS = {
  shape: { key: 'shape', title: 'shape' },
  peer: { key: 'peer', title: 'peer' },
  build: { key: 'build', title: 'build' },
  encoder_ms: { key: 'encoder_ms', title: 'encode ms', digits: 2 },
  ms_per_token: { key: 'ms_per_token', title: 'ms/token', digits: 2 },
  tokens_per_second: { key: 'tokens_per_second', title: 'tok/s', digits: 1 },
  peak_rss_mb: { key: 'peak_rss_mb', title: 'peak RSS MB', digits: 0 },
  ids_match: { key: 'ids_match', title: 'ids' },
  max_abs_logit_diff: { key: 'max_abs_logit_diff', title: 'max|dlogit|', digits: 7 },
  ours_over_peer_ms_per_token: { key: 'ours_over_peer_ms_per_token', title: 'ours/peer ms/tok', digits: 2 },
  ours_over_peer_tokens_per_second: { key: 'ours_over_peer_tokens_per_second', title: 'ours/peer tok/s', digits: 2 },
  runtime_bytes: { key: 'runtime_bytes', title: 'runtime B', digits: 0 },
  runtime_gzip_bytes: { key: 'runtime_gzip_bytes', title: 'gzip B', digits: 0 },
  first_token_ms: { key: 'first_token_ms', title: 'first token ms', digits: 0 },
  note: { key: 'note', title: 'note' },
};
const pick = (...keys) => keys.map((k) => COLUMNS[k]);

/** bench/index.js prints these: speed rows, then runtime-size rows. */
export const tables = [
  {
    title: 'batch 1, 32-token source, 64 forced greedy steps, 1 thread; encode = encoder + cross-attention K/V;\n' +
      'tok/s = 64 / (encode + 64 steps); peak RSS = child process peak minus its RSS before loading the runtime',
    columns: pick('shape', 'peer', 'build', 'encoder_ms', 'ms_per_token', 'tokens_per_second', 'peak_rss_mb', 'ids_match',
      'max_abs_logit_diff', 'ours_over_peer_ms_per_token', 'ours_over_peer_tokens_per_second', 'note'),
    rows: (row) => 'ms_per_token' in row,
  },
  {
    title: 'runtime bytes a browser downloads (gzip -9 per file); first token = import + load + encode + 1 step, fresh process',
    columns: pick('shape', 'peer', 'build', 'runtime_bytes', 'runtime_gzip_bytes', 'first_token_ms'),
    rows: (row) => 'first_token_ms' in row,
  },
];

// ------------------------------------------------------------------ the peers
// A peer is { encode(srcIds), step(token, pos) -> logits Float32Array [tgt_vocab], dispose() };
// encode also computes every decoder layer's cross-attention K and V; step(token, pos) feeds
// `token` at position `pos` and returns the logits of the next token.
// Ours is one peer per kernel build: wasmformer-simd, wasmformer-relaxed.

const ours = (build) => `wasmformer-${build}`;
const buildOf = (peer) => (peer.startsWith('wasmformer-') ? peer.slice('wasmformer-'.length) : null);

/** Loads `peer` on the model in `dir`. */
function loadPeer(peer, dir, config) {
  const build = buildOf(peer);
  return build ? loadWasmformer(dir, build) : ORT_LOADERS[peer](dir, config);
}

const ORT_LOADERS = {
  'onnxruntime-web': async (dir, config) => {
    const ort = await import('onnxruntime-web');
    // Single-threaded (no worker), fixed-width SIMD build, its .wasm/.mjs taken from the
    // package's own dist folder in node_modules.
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.simd = true;
    ort.env.wasm.wasmPaths = pathToFileURL(ortWebDist()).href + '/';
    return loadOrt(ort, dir, config, { executionProviders: ['wasm'] });
  },
  'onnxruntime-node': async (dir, config) => {
    const ort = (await import('onnxruntime-node')).default;
    return loadOrt(ort, dir, config, {
      executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential',
    });
  },
};

/** wasmformer from this package's build (dist/index.js), running kernel build `build`. */
async function loadWasmformer(dir, build) {
  const api = await importDist('index.js');
  if (typeof api.loadModel !== 'function') throw new Error('not available: dist/index.js has no loadModel yet');
  const model = await api.loadModel(dir, { build });
  return {
    encode: (srcIds) => model.encode(srcIds),
    step: (token, pos) => model.decodeStep(token, pos),
    dispose: () => model.dispose(),
  };
}

async function importDist(file) {
  const entry = join(DIST, file);
  if (!existsSync(entry)) throw new Error(`not available: dist/${file} missing (npm run build)`);
  return import(pathToFileURL(entry).href);
}

/** onnxruntime over the three exported graphs; the KV cache goes in and out of every step. */
async function loadOrt(ort, dir, config, sessionOptions) {
  const opts = { graphOptimizationLevel: 'all', ...sessionOptions };
  const encoder = await ort.InferenceSession.create(join(dir, 'encoder.onnx'), opts);
  const crossKv = await ort.InferenceSession.create(join(dir, 'cross_kv.onnx'), opts);
  const decoderStep = await ort.InferenceSession.create(join(dir, 'decoder_step.onnx'), opts);
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
      for (const s of [encoder, crossKv, decoderStep]) await s.release();
    },
  };
}

// ------------------------------------------------------------------ one forced greedy decode

/** Index of the largest logit; the lowest id wins a tie, as the spec's greedy decoding. */
function argmax(logits) {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/**
 * Encodes ref.src_ids and runs ref.steps forced greedy steps from bos. With refLogits
 * (Float32Array [steps, V], PyTorch's), also returns the largest |logit - PyTorch logit|.
 */
async function decodeForced(peer, ref, bosId, refLogits) {
  const t0 = performance.now();
  await peer.encode(ref.src_ids);
  const encodeMs = performance.now() - t0;
  const stepMs = [];
  const ids = [];
  let token = bosId;
  let maxDiff = 0;
  for (let pos = 0; pos < ref.steps; pos++) {
    const s = performance.now();
    const logits = await peer.step(token, pos);
    token = argmax(logits);
    stepMs.push(performance.now() - s);
    ids.push(token);
    if (refLogits) maxDiff = Math.max(maxDiff, maxAbsDiff(logits, refLogits.subarray(pos * logits.length, (pos + 1) * logits.length)));
  }
  return { encodeMs, stepMs, totalMs: performance.now() - t0, ids, maxDiff };
}

function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const sameIds = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

// ------------------------------------------------------------------ the models on disk

function readShape(shape) {
  const dir = join(MODELS, shape);
  for (const f of ['config.json', 'model.safetensors', 'encoder.onnx', 'cross_kv.onnx', 'decoder_step.onnx', 'reference.json', 'reference_logits.bin']) {
    if (!existsSync(join(dir, f))) throw new Error(`${join(dir, f)} missing: run /usr/bin/python3 tools/export_bench_models.py`);
  }
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8'));
  const bytes = readFileSync(join(dir, 'reference_logits.bin'));
  const refLogits = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return { dir, config, ref, refLogits };
}

// ------------------------------------------------------------------ speed, in one process

/** Speed rows of one shape: every available peer, warm-up then `reps` rotating runs. */
async function benchSpeed(shape, peerNames, reps, log) {
  const { dir, config, ref, refLogits } = readShape(shape);
  const peers = [];
  const rows = [];
  for (const peer of peerNames) {
    try {
      peers.push({ peer, impl: await loadPeer(peer, dir, config), runs: [], idsMatch: true, maxDiff: 0 });
    } catch (e) {
      rows.push(speedRow(shape, peer, { note: firstLine(e) }));
    }
  }
  const record = (p, run) => {
    p.runs.push(run);
    p.idsMatch &&= sameIds(run.ids, ref.ids);
  };
  // Warm-up, and the one run that also compares logits with PyTorch.
  for (const p of peers) {
    const run = await decodeForced(p.impl, ref, config.bos_id, refLogits);
    p.maxDiff = run.maxDiff;
    p.idsMatch = sameIds(run.ids, ref.ids);
    const step = run.ids.findIndex((id, i) => id !== ref.ids[i]);
    if (step >= 0) p.note = `ids differ from PyTorch's from step ${step} (${run.ids[step]} vs ${ref.ids[step]})`;
  }
  for (let rep = 0; rep < reps; rep++) {
    for (let i = 0; i < peers.length; i++) {
      const p = peers[(i + rep) % peers.length];
      record(p, await decodeForced(p.impl, ref, config.bos_id));
    }
    log(`${shape}: rep ${rep + 1}/${reps}`);
  }
  for (const p of peers) {
    await p.impl.dispose();
    rows.push(speedRow(shape, p.peer, {
      encoder_ms: median(p.runs.map((r) => r.encodeMs)),
      ms_per_token: median(p.runs.flatMap((r) => r.stepMs)),
      tokens_per_second: median(p.runs.map((r) => (ref.steps * 1000) / r.totalMs)),
      ids_match: p.idsMatch,
      max_abs_logit_diff: p.maxDiff,
      note: p.note,
    }));
  }
  return rows.sort((a, b) => peerNames.indexOf(a.peer) - peerNames.indexOf(b.peer));
}

/** One speed row with every key present (null when not measured), in a fixed order. */
function speedRow(shape, peer, values) {
  const row = { shape, peer };
  for (const key of ['encoder_ms', 'ms_per_token', 'tokens_per_second', 'peak_rss_mb', 'ids_match', 'max_abs_logit_diff',
    'ours_over_peer_encoder_ms', 'ours_over_peer_ms_per_token', 'ours_over_peer_tokens_per_second']) {
    row[key] = values[key] ?? null;
  }
  if (values.note) row.note = values.note;
  return row;
}

/**
 * ours/peer ratios on every onnxruntime row (ms: above 1 means we are slower; tok/s: above 1,
 * faster). Ours is the last measured build: relaxed when it runs, as loadModel picks by default.
 */
function addRatios(rows) {
  const us = rows.filter((r) => buildOf(r.peer) && r.ms_per_token != null).at(-1);
  if (!us) return;
  for (const r of rows) {
    if (buildOf(r.peer) || r.ms_per_token == null) continue;
    r.ours_over_peer_encoder_ms = us.encoder_ms / r.encoder_ms;
    r.ours_over_peer_ms_per_token = us.ms_per_token / r.ms_per_token;
    r.ours_over_peer_tokens_per_second = us.tokens_per_second / r.tokens_per_second;
  }
}

// ------------------------------------------------------------------ first token and memory, one child each

/**
 * In a fresh process: from before importing the runtime to the first decoded token (import and
 * instantiate, load the model, encode, one step), then the remaining forced steps; peak RSS is
 * the process's peak minus its RSS before the runtime was imported.
 */
async function childMain(peer, shape) {
  const { dir, config, ref } = readShape(shape);
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  const impl = await loadPeer(peer, dir, config);
  await impl.encode(ref.src_ids);
  const ids = [argmax(await impl.step(config.bos_id, 0))];
  const firstTokenMs = performance.now() - t0;
  for (let pos = 1; pos < ref.steps; pos++) ids.push(argmax(await impl.step(ids[pos - 1], pos)));
  const peak = peakRss();
  await impl.dispose();
  const result = { first_token_ms: firstTokenMs, peak_rss_mb: (peak - rss0) / MiB, ids_match: sameIds(ids, ref.ids) };
  writeSync(1, JSON.stringify(result) + '\n');
}

/**
 * This process's peak RSS in bytes. Linux: VmHWM, which starts afresh at exec; getrusage's
 * maxRSS does not (it keeps the forking parent's RSS, here the big speed-run process), so it is
 * only the fallback elsewhere.
 */
function peakRss() {
  try {
    const kb = /VmHWM:\s*(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (kb) return Number(kb[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

function runChild(peer, shape) {
  const self = fileURLToPath(import.meta.url);
  const child = spawnSync(process.execPath, [...process.execArgv, self, '--child', peer, shape], { encoding: 'utf8' });
  const last = child.stdout.trim().split('\n').at(-1);
  if (child.status !== 0 || !last) return { error: firstLine({ message: child.stderr || `exit ${child.status}` }) };
  return JSON.parse(last);
}

// ------------------------------------------------------------------ bytes a browser downloads

function ortWebDist() {
  return dirname(fileURLToPath(import.meta.resolve('onnxruntime-web')));
}

/** Sum of raw and gzip -9 sizes, each file compressed on its own as a server would send it. */
/** Raw and gzip -9 bytes of each file (path or { label, bytes }), added up. */
function sizes(files) {
  let raw = 0;
  let gzip = 0;
  for (const f of files) {
    const bytes = typeof f === 'string' ? readFileSync(f) : f.bytes;
    raw += bytes.length;
    gzip += gzipSync(bytes, { level: constants.Z_BEST_COMPRESSION }).length;
  }
  const label = (f) => (typeof f !== 'string' ? f.label : f.includes('node_modules/') ? f.slice(f.lastIndexOf('node_modules/') + 13) : relative(ROOT, f));
  return { runtime_bytes: raw, runtime_gzip_bytes: gzip, files: files.map(label) };
}

/** dist/index.js and all it imports as one minified ES module: what a page's bundler ships. */
async function minifiedBundle() {
  const bundle = await rolldown({ input: join(DIST, 'index.js'), platform: 'browser', logLevel: 'silent' });
  const { output } = await bundle.generate({ format: 'esm', minify: true });
  return { label: 'dist/index.js bundled and minified', bytes: Buffer.from(output[0].code) };
}

/**
 * What a browser fetches to run each peer. Ours: that build's .wasm and the package's JS
 * bundled and minified (as onnxruntime-web ships its own). onnxruntime-web: the wasm-only
 * minified ESM bundle (glue included) and its SIMD .wasm. onnxruntime-node is not a browser
 * runtime: null.
 */
async function runtimeSizes(builds) {
  const js = await minifiedBundle();
  const ortDist = ortWebDist();
  const sized = { 'onnxruntime-web': sizes([join(ortDist, 'ort.wasm.bundle.min.mjs'), join(ortDist, 'ort-wasm-simd-threaded.wasm')]) };
  for (const build of builds) {
    const wasm = join(DIST, `wasmformer.${build}.wasm`);
    if (existsSync(wasm) && existsSync(join(DIST, 'index.js'))) sized[ours(build)] = sizes([wasm, js]);
  }
  return sized;
}

// ------------------------------------------------------------------ entry points

/** The suite, called by bench/index.js with its parsed flags and the builds this engine runs. */
export async function run({ reps: repsFlag, shapes, builds }) {
  const reps = Number(repsFlag);
  if (!(reps >= 1)) throw new Error(`--reps must be a positive integer, got ${repsFlag}`);
  const log = (s) => console.error(s);
  const peerNames = [...builds.map(ours), ...ORT_PEERS];

  const speedRows = [];
  const runtimeRows = [];
  const runtime = await runtimeSizes(builds);
  for (const shape of shapes.split(',')) {
    const rows = await benchSpeed(shape, peerNames, reps, log);
    addRatios(rows);
    for (const row of rows) {
      let child = {};
      if (row.ms_per_token != null) {
        log(`${shape}: first token and peak memory of ${row.peer} (child process)`);
        child = runChild(row.peer, shape);
        row.peak_rss_mb = child.peak_rss_mb ?? null;
        if (child.ids_match === false) row.ids_match = false;
        if (child.error) row.note = `child: ${child.error}`;
      }
      runtimeRows.push({
        shape,
        peer: row.peer,
        runtime_bytes: runtime[row.peer]?.runtime_bytes ?? null,
        runtime_gzip_bytes: runtime[row.peer]?.runtime_gzip_bytes ?? null,
        first_token_ms: child.first_token_ms ?? null,
      });
    }
    speedRows.push(...rows);
  }
  // Rows name our peer "wasmformer" and say which kernel build ran in `build`.
  return [...speedRows, ...runtimeRows].map((row) =>
    buildOf(row.peer) ? { ...row, peer: 'wasmformer', build: buildOf(row.peer) } : row);
}

function firstLine(e) {
  return String(e?.message ?? e).trim().split('\n')[0];
}

// A child process measuring one peer's first token and peak memory (see runChild).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href && process.argv[2] === '--child') {
  await childMain(process.argv[3], process.argv[4]);
}
