// End-to-end greedy decoding: for a model of the paper's base shape and a small one (seeded
// random weights built in memory), a 32-token source and 64 forced greedy steps (the argmax is
// fed back, eos or not). Rows (table and JSON):
//   { shape, build, encoder_ms, ms_per_token, tokens_per_second, wasm_memory_mb, peak_rss_mb,
//     outside_matmul_pct }
// encoder_ms: median encode (encoder + every layer's cross-attention K/V); ms_per_token: median
// decodeStep; tokens_per_second: 64 / (encode + 64 steps), median over repetitions;
// outside_matmul_pct: share of a step's time not spent in the matmul kernel, from a separate
// profiled run that times every kernel call.
import { loadModel } from '../dist/index.js';
import { Kernels } from '../dist/runtime/index.js';
import { median } from './measure.js';
import { SHAPES, syntheticModel } from './synthetic.js';

export const options = {
  quick: { type: 'boolean' }, // 2 repetitions: a smoke check, not a measurement
  shape: { type: 'string' }, // base, small, or both (default)
};

export const columns = [
  { key: 'shape', title: 'shape' },
  { key: 'build', title: 'build' },
  { key: 'encoder_ms', title: 'encoder ms' },
  { key: 'ms_per_token', title: 'ms/token' },
  { key: 'tokens_per_second', title: 'tokens/s', digits: 1 },
  { key: 'wasm_memory_mb', title: 'wasm MiB', digits: 1 },
  { key: 'peak_rss_mb', title: 'peak RSS MiB', digits: 0 },
  { key: 'outside_matmul_pct', title: '% outside matmul', digits: 1 },
];

const SRC_LEN = 32;
const STEPS = 64;

export async function run({ quick, shape, builds }) {
  const shapes = shape ? shape.split(',') : Object.keys(SHAPES);
  const rows = [];
  for (const name of shapes) {
    const source = syntheticModel(name);
    const src = Array.from({ length: SRC_LEN }, (_, i) => 3 + ((i * 7919) % 7997));
    for (const build of builds) {
      console.error(`e2e: ${name} (${build})`);
      const model = await loadModel(source, { build });
      decode(model, src); // warm-up: compiles the hot paths
      const runs = Array.from({ length: quick ? 2 : 7 }, () => decode(model, src));
      rows.push({
        shape: name,
        build,
        encoder_ms: median(runs.map((r) => r.encoderMs)),
        ms_per_token: median(runs.flatMap((r) => r.stepMs)),
        tokens_per_second: median(runs.map((r) => STEPS / ((r.encoderMs + sum(r.stepMs)) / 1000))),
        wasm_memory_mb: model.memoryBytes / 2 ** 20,
        peak_rss_mb: process.resourceUsage().maxRSS / 1024,
        outside_matmul_pct: outsideMatmul(model, src),
      });
      model.dispose();
    }
  }
  return rows;
}

/** One encode and STEPS forced greedy steps, timed. */
function decode(model, src) {
  let t = performance.now();
  model.encode(src);
  const encoderMs = performance.now() - t;
  const stepMs = [];
  let token = model.config.bosId;
  for (let pos = 0; pos < STEPS; pos++) {
    t = performance.now();
    token = argmax(model.decodeStep(token, pos));
    stepMs.push(performance.now() - t);
  }
  return { encoderMs, stepMs };
}

/** Percent of the decoding steps' time spent outside the matmul kernel, every kernel call timed. */
function outsideMatmul(model, src) {
  const spent = { matmul: 0 };
  const original = Kernels.prototype.matmul;
  Kernels.prototype.matmul = function timed(...args) {
    const t = performance.now();
    original.apply(this, args);
    spent.matmul += performance.now() - t;
  };
  try {
    model.encode(src);
    let token = model.config.bosId;
    spent.matmul = 0; // the steps' share only, not the encoder's
    const t = performance.now();
    for (let pos = 0; pos < STEPS; pos++) token = argmax(model.decodeStep(token, pos));
    return 100 * (1 - spent.matmul / (performance.now() - t));
  } finally {
    Kernels.prototype.matmul = original;
  }
}

function argmax(x) {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

function sum(xs) {
  return xs.reduce((a, b) => a + b, 0);
}
