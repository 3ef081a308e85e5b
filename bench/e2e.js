// End-to-end greedy decoding: for a model of the paper's base shape and a small one (seeded
// random weights built in memory), a 32-token source and 64 forced greedy steps (the argmax is
// fed back, eos or not). Rows (table and JSON):
//   { shape, build, encoder_ms, ms_per_token, tokens_per_second, wasm_memory_mb, peak_rss_mb,
//     outside_matmul_pct, attention_pct, layernorm_pct, other_kernels_pct, js_pct }
// encoder_ms: median encode (encoder + every layer's cross-attention K/V); ms_per_token: median
// decodeStep; tokens_per_second: 64 / (encode + 64 steps), median over repetitions;
// outside_matmul_pct and the rest: where a step's time goes, from a separate profiled run that
// times every kernel call (js: the model's own code, argument checks, the argmax over logits).
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
  { key: 'attention_pct', title: '% attention', digits: 1 },
  { key: 'layernorm_pct', title: '% layernorm', digits: 1 },
  { key: 'other_kernels_pct', title: '% add+embed', digits: 1 },
  { key: 'js_pct', title: '% JS', digits: 1 },
];

const SRC_LEN = 32;
// The kernels a decoding step calls, timed one by one in the profile.
const KERNELS = ['matmul', 'attention', 'layernorm', 'add', 'embed'];
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
        ...share(profile(model, src)),
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
  let token = model.config.decoderStartId;
  for (let pos = 0; pos < STEPS; pos++) {
    t = performance.now();
    token = argmax(model.decodeStep(token, pos));
    stepMs.push(performance.now() - t);
  }
  return { encoderMs, stepMs };
}

/**
 * Where a decoding step's time goes, in percent: each kernel (every call timed through the
 * checked wrappers, so a kernel's share includes its argument checks) and, as "js", the rest.
 */
function profile(model, src) {
  const spent = {};
  const patched = KERNELS.map((name) => {
    const original = Kernels.prototype[name];
    Kernels.prototype[name] = function timed(...args) {
      const t = performance.now();
      const result = original.apply(this, args);
      spent[name] = (spent[name] ?? 0) + performance.now() - t;
      return result;
    };
    return [name, original];
  });
  try {
    model.encode(src);
    for (const name of KERNELS) spent[name] = 0; // the steps' shares only, not the encoder's
    let token = model.config.decoderStartId;
    const t = performance.now();
    for (let pos = 0; pos < STEPS; pos++) token = argmax(model.decodeStep(token, pos));
    const total = performance.now() - t;
    const pct = Object.fromEntries(KERNELS.map((name) => [name, (100 * spent[name]) / total]));
    return { ...pct, js: 100 - KERNELS.reduce((sum, name) => sum + pct[name], 0) };
  } finally {
    for (const [name, original] of patched) Kernels.prototype[name] = original;
  }
}

/** The profile as row fields. */
function share(p) {
  return {
    outside_matmul_pct: 100 - p.matmul,
    attention_pct: p.attention,
    layernorm_pct: p.layernorm,
    other_kernels_pct: p.add + p.embed,
    js_pct: p.js,
  };
}

function argmax(x) {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

function sum(xs) {
  return xs.reduce((a, b) => a + b, 0);
}
