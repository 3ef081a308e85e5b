// Threads: wasmformer's `threads` option against onnxruntime-web's numThreads (its wasm backend)
// on the peers suite's seeded random-weight models (bench/models/{base,small}, written by
// tools/export_bench_models.py; ours q8: the folder `wasmformer quantize` writes, made on first
// use): batch 1, the fixed 32-token source, 64 FORCED greedy steps, float32 and q8, each peer
// with 1 and 2 threads, and 4 where os.availableParallelism() is 4 or more.
//
//   .venv/bin/python tools/export_bench_models.py     (writes bench/models/{base,small}/)
//   npm run bench -- threads [--json FILE] [--reps 7] [--shapes base,small] [--build relaxed]
//
// Ours runs the build --build names (default: relaxed where the engine validates it, the faster
// build; the rows say which). onnxruntime-web reads numThreads once, at a module instance's
// first session, so each thread count is an instance of its own (peers.js's loadOrtWeb imports
// its whole module graph afresh under a URL query); in Node its pthreads are worker_threads.
// Everything of one shape is loaded in one process and warmed up (one teacher-forced run each);
// once V8 is done compiling in the background, the contenders take turns for --reps reps, each
// rep starting one contender later: one encode and 64 steps per turn (peers.js's interleaved()).
//
// Columns: threads, the count asked for; ran, the count running at the end (ours retires a
// helper that stops paying when other processes take the cores, and the note says why;
// onnxruntime-web falls back to one where it cannot have threads); cpu/wall, the process's CPU
// time (all its threads) over a rep's wall time, the median: about 1 for one busy thread, 2 for
// two, and near 1 on a 2-thread row when the machine's other processes had the second core;
// encode ms, the median encode (the encoder and each decoder layer's cross-attention K/V);
// ms/token, the median step; tok/s, 64 / (encode + 64 steps), the median rep; x1 encode and
// x1 ms/tok, the same peer and dtype's 1-thread ms over this row's (above 1: faster); same as 1
// thread, what every run (the warm-up and each rep) gave as the 1-thread runs did: the greedy
// ids, and the first step's logits bit for bit ("ids, logits"; ours must, or the suite fails).
// Every fp32 row's greedy ids are also checked against PyTorch's (a note where they differ).
// The second table, printed only, is the targets as ratios: ours with 2 threads against
// ours with 1 (encode >= 1.7, and base's ms/token >= 1.3), ours against onnxruntime-web with 2
// threads each (tok/s >= 1.5); with 1 thread each and with 4, for context.
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { pick } from './columns.js';
import { ensureQuantized } from './footprint.js';
import { BenchError, median } from './measure.js';
import {
  DTYPES, MODELS, againstPyTorch, interleaved, loadOrtWeb, loadWasmformer, modelFiles, readShape, samePrefix, speeds,
} from './peers.js';

/** Flags of this suite (node:util parseArgs specs); --build's default depends on the engine (run()). */
export const options = {
  reps: { type: 'string', default: '7' },
  shapes: { type: 'string', default: 'base,small' },
  build: { type: 'string' },
};

const PEERS = ['wasmformer', 'onnxruntime-web'];

/** bench/index.js prints these: the rows, then the targets (not in the JSON). */
export const tables = [
  {
    title: 'batch 1, 32-token source, 64 forced greedy steps, contenders in turns; encode = encoder + cross-attention K/V;\n' +
      'ms/token: median step; tok/s = 64 / (encode + 64 steps), median rep; ran: threads running at the end;\n' +
      'cpu/wall: the process\'s CPU time (all threads) over a rep\'s wall time, median; x1: the 1-thread row\'s ms over\n' +
      'this row\'s (above 1: faster); same as 1 thread: what every run gave identically (greedy ids; logits: the first\n' +
      'step\'s, bit for bit)',
    columns: pick('shape', 'peer', 'build', 'dtype', 'threads', 'threads_running', 'cores_busy', 'encoder_ms', 'ms_per_token',
      'tokens_per_second', 'vs_1_thread_encoder', 'vs_1_thread_token', 'identical_to_1_thread', 'note'),
  },
  {
    title: 'targets (ratios above 1: the first named is faster)',
    columns: pick('shape', 'dtype', 'target', 'ratio', 'goal', 'met', 'note'),
    derive: (rows) => targets(rows),
  },
];

// ------------------------------------------------------------------ the contenders
// A contender is { peer, build, dtype, threads }: ours runs kernel build `build`, onnxruntime-web
// has none (null). Loaded, it is peers.js's peer (encode, step, dispose) with threads() and
// threadsReason().

/** Every contender, fp32 first, then q8; within a dtype ours, then onnxruntime-web, each by thread count. */
function contenders(build, counts) {
  return DTYPES.flatMap((dtype) => PEERS.flatMap((peer) =>
    counts.map((threads) => ({ peer, build: peer === 'wasmformer' ? build : null, dtype, threads }))));
}

const label = (c) => [c.peer, c.build, c.dtype, `${c.threads} thread${c.threads > 1 ? 's' : ''}`].filter(Boolean).join(' ');

function load(c, { dir, config }) {
  return c.peer === 'wasmformer' ? loadWasmformer(dir, c) : loadOrtWeb(modelFiles(dir, c), config, c.threads);
}

// ------------------------------------------------------------------ one shape, in one process

/** The rows of one shape; a BenchError if ours gave anything but its 1-thread bytes. */
async function benchShape(shape, all, reps, log) {
  const model = readShape(shape);
  const { ref } = model;
  const { loaded, failed } = await interleaved(all, (c) => load(c, model), model, reps,
    (rep) => log(`${shape}: rep ${rep + 1}/${reps}`));
  for (const p of loaded) {
    // Before dispose(): a helper retired during the reps shows here.
    p.running = p.impl.threads();
    p.reason = p.impl.threadsReason();
    await p.impl.dispose();
    p.speed = { ...speeds(p.runs, ref.steps), cores_busy: median(p.runs.map((r) => r.cpuMs / r.totalMs)) };
  }
  const rows = [];
  const broken = [];
  for (const c of all) {
    const p = loaded.find((q) => q.c === c);
    const row = rowOf(shape, c);
    if (!p) {
      rows.push({ ...row, note: failed.find((f) => f.c === c).note });
      continue;
    }
    const notes = [];
    if (p.running < c.threads) notes.push(p.reason ?? `only ${p.running} ran`);
    Object.assign(row, { threads_running: p.running, ...p.speed });
    const one = loaded.find((q) => q.c.peer === c.peer && q.c.dtype === c.dtype && q.c.threads === 1);
    if (one && one !== p) {
      row.vs_1_thread_encoder = one.speed.encoder_ms / row.encoder_ms;
      row.vs_1_thread_token = one.speed.ms_per_token / row.ms_per_token;
      const same = sameAs(one, p);
      row.identical_to_1_thread = same.verdict;
      if (same.verdict === 'no') notes.push(same.differ);
      if (c.peer === 'wasmformer' && same.verdict !== 'ids, logits') broken.push(`${label(c)}: ${same.differ}`);
    } else if (!one) {
      notes.push('no 1-thread run to compare with');
    }
    const pytorch = againstPyTorch(c, p.runs, ref).note;
    if (pytorch) notes.push(pytorch);
    rows.push(notes.length ? { ...row, note: notes.join('; ') } : row);
  }
  if (broken.length) {
    throw new BenchError(`wasmformer's threads changed its results (they must be the 1-thread bytes):\n  ${broken.join('\n  ')}`);
  }
  return rows;
}

/** A row with every key present, null where not measured. */
function rowOf(shape, c) {
  return {
    shape, peer: c.peer, build: c.build, dtype: c.dtype, threads: c.threads, threads_running: null, cores_busy: null,
    encoder_ms: null, ms_per_token: null, tokens_per_second: null,
    vs_1_thread_encoder: null, vs_1_thread_token: null, identical_to_1_thread: null,
  };
}

/**
 * What every run of loaded contender `p` gave as the same peer and dtype's 1-thread `one` did:
 * 'ids, logits' (its argmaxes, and the first step's logits bit for bit), 'ids', or 'no';
 * `differ` says where not. The warm-up (teacher-forced) compares with one's warm-up, each rep
 * (greedy) with one's first rep; the first step is fed bos in both, so its logits are one's warm-up's.
 */
function sameAs(one, p) {
  const pairs = [[p.warm, one.warm], ...p.runs.map((r) => [r, one.runs[0]])];
  const step = pairs.map(([r, base]) => samePrefix(r.ids, base.ids)).find((n) => n < one.warm.ids.length);
  if (step !== undefined) return { verdict: 'no', differ: `ids differ from 1 thread's from step ${step}` };
  const bits = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  const logits = pairs.every(([r]) => bits(r.firstLogits).equals(bits(one.warm.firstLogits)));
  return logits ? { verdict: 'ids, logits' } : { verdict: 'ids', differ: 'the first step\'s logits differ from 1 thread\'s in their bits' };
}

// ------------------------------------------------------------------ the targets

/**
 * Per shape and dtype: ours with n threads against ours with 1 (encode, and ms per token), and
 * ours against onnxruntime-web at the same count (tok/s, end to end); the goals are for
 * 2 threads (decoding's for base), the rest is context.
 */
function targets(rows) {
  const out = [];
  for (const shape of [...new Set(rows.map((r) => r.shape))]) {
    for (const dtype of DTYPES) {
      const of = (peer, threads) => rows.find((r) => r.shape === shape && r.dtype === dtype && r.peer === peer && r.threads === threads);
      const counts = [...new Set(rows.filter((r) => r.shape === shape && r.dtype === dtype).map((r) => r.threads))];
      // The rows a ratio comes from that ran fewer threads than asked (their notes say why).
      const short = (...rs) => rs.filter((r) => r?.threads_running < r?.threads).map((r) => `${r.peer} ran ${r.threads_running}`);
      const line = (target, ratio, atLeast, ...from) => {
        const measured = Number.isFinite(ratio) ? ratio : null;
        const met = atLeast === null || measured === null ? '-' : measured >= atLeast ? 'yes' : 'no';
        const fewer = short(...from);
        out.push({
          shape, dtype, target, ratio: measured, goal: atLeast === null ? '-' : `>= ${atLeast}`, met,
          ...(fewer.length ? { note: fewer.join(', ') } : {}),
        });
      };
      for (const n of counts.filter((t) => t > 1)) {
        const us = of('wasmformer', n);
        const two = n === 2;
        line(`ours encode, ${n} threads vs 1`, us?.vs_1_thread_encoder, two ? 1.7 : null, us);
        line(`ours ms/token, ${n} threads vs 1`, us?.vs_1_thread_token, two && shape === 'base' ? 1.3 : null, us);
      }
      for (const n of counts) {
        const [us, web] = [of('wasmformer', n), of('onnxruntime-web', n)];
        line(`tok/s, ours / onnxruntime-web, ${n} thread${n > 1 ? 's' : ''} each`, us?.tokens_per_second / web?.tokens_per_second,
          n === 2 ? 1.5 : null, us, web);
      }
    }
  }
  return out;
}

// ------------------------------------------------------------------ entry point

/** The suite, called by bench/index.js with its parsed flags and the builds this engine runs. */
export async function run({ reps: repsFlag, shapes, build: buildFlag, builds }) {
  const reps = Number(repsFlag);
  if (!Number.isInteger(reps) || reps < 1) throw new BenchError(`--reps must be a positive integer, got ${repsFlag}`);
  const build = buildFlag ?? (builds.includes('relaxed') ? 'relaxed' : builds.at(-1));
  if (!builds.includes(build)) throw new BenchError(`--build ${build}: this engine runs ${builds.join(', ')}`);
  const cores = availableParallelism();
  const counts = [1, 2, ...(cores >= 4 ? [4] : [])];
  const log = (s) => console.error(s);
  log(`threads: ${cores} cores here, so ${counts.join(', ')} threads${cores < 4 ? ' (4 needs 4 cores)' : ''}; ours: the ${build} build`);
  const all = contenders(build, counts);
  const rows = [];
  for (const shape of shapes.split(',')) {
    ensureQuantized(join(MODELS, shape));
    rows.push(...await benchShape(shape, all, reps, log));
  }
  return rows;
}
