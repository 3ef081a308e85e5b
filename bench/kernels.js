// Kernel microbenchmarks: our matmul, softmax and layernorm (every WASM build) against
// @tensorflow/tfjs-backend-wasm (XNNPACK, one thread) and a naive JS loop, in one process,
// interleaved. Rates: matmul in GFLOP/s (2·M·K·N per call); softmax and layernorm in
// G elements/s (rows·cols per call). Rows (table and JSON):
//   { kernel, build, shape, unit, ours, tfjs, naive, ratio_vs_tfjs }
// shape is a string: "MxKxN" for matmul (out[M,N] = A[M,K] · W[N,K]^T + bias), "RxC" (rows x
// columns) for softmax and layernorm. build is ours'; tfjs and naive repeat on each build's row.
import * as tf from '@tensorflow/tfjs-core';
import { getThreadsCount, setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { createRuntime } from '../dist/runtime/index.js';
import { BenchError, interleave } from './measure.js';

export const options = {
  quick: { type: 'boolean' }, // 2 short rounds: a smoke check, not a measurement
  filter: { type: 'string' }, // the kernels to run, comma-separated: matmul,softmax,layernorm
  'no-check': { type: 'boolean' }, // time even when ours disagrees with tfjs (stub kernels)
};

export const columns = [
  { key: 'kernel', title: 'kernel' },
  { key: 'shape', title: 'shape' },
  { key: 'build', title: 'build' },
  { key: 'unit', title: 'unit' },
  { key: 'ours', title: 'ours' },
  { key: 'tfjs', title: 'tfjs' },
  { key: 'naive', title: 'naive' },
  { key: 'ratio_vs_tfjs', title: 'ours/tfjs' },
];

const EPS = 1e-5;
const ROW_SHAPES = [[128, 512], [1024, 128]]; // [rows, cols]

// Each kernel: its shapes, the work of one call, the random inputs of a shape, and one
// contender ({ fn, result }) per implementation over those inputs.
const KERNELS = {
  matmul: {
    unit: 'GFLOP/s',
    shapes: [
      [1, 512, 512], [1, 512, 2048], [1, 2048, 512], [1, 512, 32000], [16, 512, 512],
      [64, 512, 512], [128, 512, 2048], [128, 2048, 512], [256, 1024, 1024], [512, 512, 512],
    ], // [M, K, N]
    work: ([m, k, n]) => 2 * m * k * n,
    inputs: ([m, k, n], rand) => ({ a: fill(m * k, rand), w: fill(n * k, rand), bias: fill(n, rand) }),
    ours(rt, { a, w, bias }, [m, k, n]) {
      const [A, W, B] = [a, w, bias].map((d) => upload(rt, d));
      const packed = rt.kernels.pack(W, 0, B, n, k, k, 'packed w'); // once, as at model load
      const out = rt.arena.alloc(m * n, 'out');
      return contender(() => rt.kernels.matmul(out, 0, A, 0, packed, m, k, n), () => rt.arena.view(out));
    },
    tfjs({ a, w, bias }, [m, k, n]) {
      // XNNPACK's fully-connected operator (weights packed once, bias fused) serves only
      // matMul without transposes: so W^T [K, N] is made once, and bias goes into fused.matMul.
      const A = tf.tensor2d(a, [m, k]);
      const WT = tf.tidy(() => tf.transpose(tf.tensor2d(w, [n, k])));
      const B = tf.tensor1d(bias);
      return tfjsContender(() => tf.fused.matMul({ a: A, b: WT, bias: B }), [A, WT, B]);
    },
    naive({ a, w, bias }, [m, k, n]) {
      const out = new Float32Array(m * n);
      return contender(() => naiveMatmul(out, a, w, bias, m, k, n), () => out);
    },
  },

  softmax: {
    unit: 'Gelem/s',
    shapes: ROW_SHAPES,
    work: ([rows, cols]) => rows * cols,
    inputs: ([rows, cols], rand) => ({ x: fill(rows * cols, rand, -4, 4) }),
    ours(rt, { x }, [rows, cols]) {
      const X = upload(rt, x);
      // In place, as attention uses it: scale 1, no causal mask (offset < 0), no key mask.
      const fn = () => rt.kernels.softmax(X, 0, rows, cols, cols, 1, -1, null);
      return contender(fn, () => rt.arena.view(X), () => rt.arena.view(X).set(x));
    },
    tfjs({ x }, [rows, cols]) {
      const X = tf.tensor2d(x, [rows, cols]);
      return tfjsContender(() => tf.softmax(X), [X]);
    },
    naive({ x }, [rows, cols]) {
      const y = x.slice();
      return contender(() => naiveSoftmax(y, rows, cols), () => y, () => y.set(x));
    },
  },

  layernorm: {
    unit: 'Gelem/s',
    shapes: ROW_SHAPES,
    work: ([rows, n]) => rows * n,
    inputs: ([rows, n], rand) => ({
      x: fill(rows * n, rand), r: fill(rows * n, rand), gamma: fill(n, rand, 0.5, 1.5), beta: fill(n, rand),
    }),
    ours(rt, { x, r, gamma, beta }, [rows, n]) {
      const [X, R, G, B] = [x, r, gamma, beta].map((d) => upload(rt, d));
      const out = rt.arena.alloc(rows * n, 'out');
      return contender(() => rt.kernels.layernorm(out, null, X, R, G, B, rows, n, EPS), () => rt.arena.view(out));
    },
    tfjs({ x, r, gamma, beta }, [rows, n]) {
      const [X, R] = [x, r].map((d) => tf.tensor2d(d, [rows, n]));
      const [G, B] = [gamma, beta].map((d) => tf.tensor1d(d));
      return tfjsContender(() => tfjsLayerNorm(X, R, G, B), [X, R, G, B]);
    },
    naive({ x, r, gamma, beta }, [rows, n]) {
      const out = new Float32Array(rows * n);
      return contender(() => naiveLayerNorm(out, x, r, gamma, beta, rows, n), () => out);
    },
  },
};

export async function run({ builds, quick, filter, 'no-check': noCheck }) {
  const names = filter ? filter.split(',') : Object.keys(KERNELS);
  const unknown = names.filter((name) => !(name in KERNELS));
  if (unknown.length) {
    throw new BenchError(`--filter: no kernel ${unknown.join(', ')} (have ${Object.keys(KERNELS).join(', ')})`);
  }
  setThreadsCount(1); // before the backend starts
  if (!(await tf.setBackend('wasm'))) throw new BenchError('tfjs: the wasm backend failed to start');
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  console.error(`tfjs ${tf.version_core} wasm backend: ${getThreadsCount()} thread, ${simd ? 'SIMD' : 'scalar'} binary`);

  const runtimes = await Promise.all(builds.map((build) => createRuntime({ build })));
  // Rounds of interleaving, and the benchmark.js options of each contender's run in a round.
  const plan = quick
    ? { rounds: 2, options: { maxTime: 0.02, minTime: 0.02, minSamples: 2 } }
    : { rounds: 5, options: { maxTime: 0.2 } };
  const rows = [];
  for (const name of names) {
    for (const shape of KERNELS[name].shapes) rows.push(...benchShape(name, shape, runtimes, plan, !noCheck));
  }
  return rows;
}

/** Checks then times one shape of one kernel: ours in each runtime, tfjs, naive; one row per build. */
function benchShape(name, shape, runtimes, plan, check) {
  const kernel = KERNELS[name];
  const label = `${name} ${shape.join('x')}`;
  const started = Date.now();
  process.stderr.write(`${label}:`);
  const data = kernel.inputs(shape, rng(42));
  const marks = runtimes.map((rt) => rt.arena.mark());
  const ours = runtimes.map((rt) => kernel.ours(rt, data, shape));
  const tfjs = kernel.tfjs(data, shape);
  // One naive call may take a second: one sample per run is enough.
  const naive = { ...kernel.naive(data, shape), options: { minSamples: 1 } };
  const contenders = [...ours, tfjs, naive];
  try {
    if (check) {
      const others = [...runtimes.map((rt, i) => [`ours (${rt.build})`, ours[i]]), ['naive', naive]];
      guard(label, tfjs.result(), others);
      process.stderr.write(' checked');
    } else {
      contenders.forEach((c) => c.fn()); // warm up: tfjs packs its weights on the first call
    }
    const progress = (round) => process.stderr.write(` ${round + 1}/${plan.rounds}`);
    const rates = interleave(contenders, plan.rounds, plan.options, progress);
    process.stderr.write(` (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
    const giga = kernel.work(shape) / 1e9;
    const [tfjsRate, naiveRate] = rates.slice(ours.length);
    return runtimes.map((rt, i) => ({
      kernel: name, build: rt.build, shape: shape.join('x'), unit: kernel.unit,
      ours: rates[i] * giga, tfjs: tfjsRate * giga, naive: naiveRate * giga, ratio_vs_tfjs: rates[i] / tfjsRate,
    }));
  } finally {
    tfjs.dispose(); // frees tfjs's tensors and the XNNPACK operator cached on its weights
    runtimes.forEach((rt, i) => rt.arena.reset(marks[i]));
  }
}

/**
 * Stops the run when a contender's output strays from tfjs's by more than a loose tolerance
 * (1e-3 of the largest output): a fast wrong kernel must not be reported.
 */
function guard(label, want, contenders) {
  let scale = 0;
  for (const v of want) scale = Math.max(scale, Math.abs(v));
  const tol = 1e-3 * scale;
  for (const [who, c] of contenders) {
    const got = c.result();
    for (let i = 0; i < want.length; i++) {
      const diff = Math.abs(got[i] - want[i]);
      if (!(diff <= tol)) {
        throw new BenchError(
          `${label}: ${who} disagrees with tfjs at element ${i}: ${got[i]} vs ${want[i]} ` +
          `(|diff| ${diff.toExponential(2)} > tolerance ${tol.toExponential(2)}). Not timing a wrong ` +
          'kernel; --no-check times it anyway.',
        );
      }
    }
  }
}

/** A contender over JS-visible output: result() restores the inputs (in-place kernels), runs once, copies. */
function contender(fn, output, restore = () => {}) {
  return { fn, result: () => (restore(), fn(), Float32Array.from(output())) };
}

/** A tfjs contender: the timed call frees its output and intermediates, as a tfjs user would. */
function tfjsContender(op, tensors) {
  return {
    fn: () => tf.tidy(op).dispose(),
    result: () => {
      const t = tf.tidy(op);
      const data = t.dataSync().slice();
      t.dispose();
      return data;
    },
    dispose: () => tf.dispose(tensors),
  };
}

/** LayerNorm(x + r) · gamma + beta over the last axis, as a tfjs user writes it. */
function tfjsLayerNorm(x, r, gamma, beta) {
  const s = tf.add(x, r);
  const { mean, variance } = tf.moments(s, -1, true);
  const normed = tf.mul(tf.sub(s, mean), tf.rsqrt(tf.add(variance, EPS)));
  return tf.add(tf.mul(normed, gamma), beta);
}

/** out[m, n] = a[m, k] · w[n, k]^T + bias[n], one dot product per output. */
function naiveMatmul(out, a, w, bias, m, k, n) {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = bias[j];
      for (let p = 0; p < k; p++) s += a[i * k + p] * w[j * k + p];
      out[i * n + j] = s;
    }
  }
}

/** Each row of x[rows, cols], in place: exp(x - max) / sum. */
function naiveSoftmax(x, rows, cols) {
  for (let i = 0; i < rows * cols; i += cols) {
    let max = -Infinity;
    for (let j = i; j < i + cols; j++) max = Math.max(max, x[j]);
    let sum = 0;
    for (let j = i; j < i + cols; j++) sum += x[j] = Math.exp(x[j] - max);
    for (let j = i; j < i + cols; j++) x[j] /= sum;
  }
}

/** out[rows, n] = (s - mean) / sqrt(var + eps) · gamma + beta per row, s = x + r. */
function naiveLayerNorm(out, x, r, gamma, beta, rows, n) {
  for (let i = 0; i < rows * n; i += n) {
    let mean = 0;
    for (let j = 0; j < n; j++) mean += out[i + j] = x[i + j] + r[i + j];
    mean /= n;
    let variance = 0;
    for (let j = 0; j < n; j++) variance += (out[i + j] - mean) ** 2;
    const inv = 1 / Math.sqrt(variance / n + EPS);
    for (let j = 0; j < n; j++) out[i + j] = (out[i + j] - mean) * inv * gamma[j] + beta[j];
  }
}

/** A region of rt's arena holding a copy of data. */
function upload(rt, data) {
  const region = rt.arena.alloc(data.length, 'input');
  rt.arena.view(region).set(data);
  return region;
}

function fill(length, rand, lo = -1, hi = 1) {
  return Float32Array.from({ length }, () => rand(lo, hi));
}

/** Seeded uniform floats in [lo, hi) (mulberry32), so every run times the same data. */
function rng(seed) {
  let s = seed >>> 0;
  return (lo, hi) => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  };
}
