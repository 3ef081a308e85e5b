// End-to-end decoding, three tables.
// 1. Greedy steps: for a model of the paper's base shape and a small one (seeded random weights
// built in memory, vocabularies of 8000), and the base shape as a Marian model with opus-mt-en-de's
// vocabulary of 58101 ('opus'), a 32-token source and 64 forced greedy steps (the argmax is fed
// back, eos or not), float32 and q8 (int8 weights) models of the same weights taking turns in
// one run. Rows (table and JSON):
//   { table: 'steps', shape, build, dtype, encoder_ms, ms_per_token, tokens_per_second, vs_f32,
//     wasm_memory_mb, memory_vs_f32, outside_matmul_pct, attention_pct, layernorm_pct,
//     other_kernels_pct, js_pct }
// vs_f32: float32's ms_per_token over this row's; memory_vs_f32: this row's WebAssembly memory
// over float32's.
// encoder_ms: median encode (encoder + every layer's cross-attention K/V); ms_per_token: median
// decodeStep; tokens_per_second: 64 / (encode + 64 steps), median over repetitions;
// outside_matmul_pct and the rest: where a step's time goes, from a separate profiled run that
// times every kernel call (js: the model's own code, argument checks, the argmax over logits).
// 2. Searches: the base shape as a Marian folder with opus-mt-en-de's vocabulary (58101), one
// 25-token source, generate() with greedy, beam 4 and beam 6 forced to 33 tokens (minNewTokens),
// float32 and q8:
//   { table: 'search', shape, vocab, build, dtype, search, ms_per_token, vs_greedy }
// ms_per_token: (time of 33 tokens - time of 1) / 32, the median of interleaved runs: a step's
// cost, without the encoder's.
// 3. Batches: 64 sources of 10-40 tokens decoded one at a time (generate), and with
// generateBatch in batches of 8 and of 32 (batchSize: that many in flight, the next starting as
// one finishes), greedy and beam 4; every way must give the same ids. On the base shape above
// (random weights repeat one token forever, so there eos gets a bias and no_repeat_ngram_size is
// 1: sentences then end at their own lengths, 2 to 64 tokens) and on the trained demo
// (models/en-de-messages, 64 held-out texts, each ending at its own eos):
//   { table: 'batch', shape, build, search, batch, sentences_per_second, vs_one_at_a_time, tokens }
import { readFileSync } from 'node:fs';
import { loadModel } from '../dist/index.js';
import { Kernels } from '../dist/runtime/index.js';
import { argmax, BenchError, median } from './measure.js';
import { SHAPES, marianConfig, syntheticFolder, syntheticModel } from './synthetic.js';

export const options = {
  quick: { type: 'boolean' }, // 2 repetitions: a smoke check, not a measurement
  shape: { type: 'string' }, // the steps table's shapes: base, small, opus, or all (default)
  tables: { type: 'string' }, // which tables: steps, search, batch, or all (default)
};

const stepColumns = [
  { key: 'shape', title: 'shape' },
  { key: 'build', title: 'build' },
  { key: 'dtype', title: 'dtype' },
  { key: 'encoder_ms', title: 'encoder ms' },
  { key: 'ms_per_token', title: 'ms/token' },
  { key: 'tokens_per_second', title: 'tokens/s', digits: 1 },
  { key: 'vs_f32', title: 'x f32 per token' },
  { key: 'wasm_memory_mb', title: 'wasm MiB', digits: 1 },
  { key: 'memory_vs_f32', title: 'memory / f32' },
  { key: 'outside_matmul_pct', title: '% outside matmul', digits: 1 },
  { key: 'attention_pct', title: '% attention', digits: 1 },
  { key: 'layernorm_pct', title: '% layernorm', digits: 1 },
  { key: 'other_kernels_pct', title: '% add+embed', digits: 1 },
  { key: 'js_pct', title: '% JS', digits: 1 },
];

export const tables = [
  { title: 'Greedy steps (base and small: vocabularies of 8000; opus: the base shape with 58101)', columns: stepColumns, rows: (r) => r.table === 'steps' },
  {
    title: 'Searches, per generated token (base shape, vocabulary 58101)',
    rows: (r) => r.table === 'search',
    columns: [
      { key: 'shape', title: 'shape' }, { key: 'build', title: 'build' }, { key: 'dtype', title: 'dtype' },
      { key: 'search', title: 'search' }, { key: 'ms_per_token', title: 'ms/token' }, { key: 'vs_greedy', title: 'x greedy' },
    ],
  },
  {
    title: '64 sentences: one at a time, and in batches',
    rows: (r) => r.table === 'batch',
    columns: [
      { key: 'shape', title: 'model' }, { key: 'build', title: 'build' }, { key: 'search', title: 'search' },
      { key: 'batch', title: 'batch' }, { key: 'sentences_per_second', title: 'sentences/s', digits: 1 },
      { key: 'vs_one_at_a_time', title: 'x one at a time' }, { key: 'tokens', title: 'tokens', digits: 0 },
    ],
  },
];

const SRC_LEN = 32;
// The kernels a decoding step calls, timed one by one in the profile.
const KERNELS = ['matmul', 'matmulQ8', 'attendRows', 'attention', 'layernorm', 'add', 'embed', 'embedQ8'];
const DTYPES = ['f32', 'q8'];
const STEPS = 64;

export async function run({ quick, shape, tables: only, builds }) {
  const shapes = shape ? shape.split(',') : [...Object.keys(SHAPES), 'opus'];
  const wanted = (name) => !only || only.split(',').includes(name);
  const rows = wanted('steps') ? await steps(quick, shapes, builds) : [];
  if (wanted('search')) for (const build of builds) for (const dtype of DTYPES) rows.push(...(await searches(quick, build, dtype)));
  if (wanted('batch')) for (const build of builds) rows.push(...(await batches(quick, build)));
  return rows;
}

/** The weights of a steps-table shape, for loadModel. */
function stepModel(name) {
  return name === 'opus' ? syntheticFolder(marianConfig('base', VOCAB)) : syntheticModel(name);
}

async function steps(quick, shapes, builds) {
  const rows = [];
  for (const name of shapes) {
    const source = stepModel(name);
    const vocab = name === 'opus' ? VOCAB : 8000;
    const src = Array.from({ length: SRC_LEN }, (_, i) => 3 + ((i * 7919) % (vocab - 4)));
    for (const build of builds) {
      console.error(`e2e: ${name} (${build})`);
      const models = [];
      for (const dtype of DTYPES) models.push(await loadModel(source, { build, dtype }));
      for (const model of models) decode(model, src); // warm-up: compiles the hot paths
      const runs = models.map(() => []);
      for (let rep = 0; rep < (quick ? 2 : 7); rep++) models.forEach((model, i) => runs[i].push(decode(model, src)));
      const perToken = runs.map((r) => median(r.flatMap((x) => x.stepMs)));
      models.forEach((model, i) => rows.push({
        table: 'steps',
        shape: name,
        build,
        dtype: model.dtype,
        encoder_ms: median(runs[i].map((r) => r.encoderMs)),
        ms_per_token: perToken[i],
        tokens_per_second: median(runs[i].map((r) => STEPS / ((r.encoderMs + sum(r.stepMs)) / 1000))),
        vs_f32: perToken[0] / perToken[i],
        wasm_memory_mb: model.memoryBytes / 2 ** 20,
        memory_vs_f32: model.memoryBytes / models[0].memoryBytes,
        ...share(profile(model, src)),
      }));
      for (const model of models) model.dispose();
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
    outside_matmul_pct: 100 - p.matmul - p.matmulQ8,
    attention_pct: p.attention + p.attendRows,
    layernorm_pct: p.layernorm,
    other_kernels_pct: p.add + p.embed + p.embedQ8,
    js_pct: p.js,
  };
}


function sum(xs) {
  return xs.reduce((a, b) => a + b, 0);
}

const VOCAB = 58101;
const EOS = 0;

/** The base shape as a Marian folder with opus-mt-en-de's vocabulary; eosBias > 0 makes eos likelier (final_logits_bias). */
async function baseMarian(build, eosBias = 0, dtype = 'f32') {
  const adjust = (name, _, data) => {
    if (name === 'final_logits_bias') data.fill(0)[EOS] = eosBias;
  };
  return loadModel(syntheticFolder(marianConfig('base', VOCAB), 1, 'F32', { adjust }), { build, dtype });
}

/** Greedy, beam 4 and beam 6 on one source: a step's cost per generated token, interleaved. */
async function searches(quick, build, dtype) {
  console.error(`e2e: searches, base shape, vocabulary ${VOCAB} (${build}, ${dtype})`);
  const model = await baseMarian(build, 0, dtype);
  const src = [...Array.from({ length: 24 }, (_, i) => 3 + ((i * 7919) % (VOCAB - 4))), EOS];
  const kinds = [['greedy', 1], ['beam 4', 4], ['beam 6', 6]];
  const time = async (numBeams, tokens) => {
    const t = performance.now();
    const ids = await model.generate(src, { numBeams, maxNewTokens: tokens, minNewTokens: tokens });
    if (ids.length !== tokens - 1 && ids.length !== tokens) throw new BenchError(`e2e: ${numBeams} beams gave ${ids.length} tokens, not ${tokens}`);
    return performance.now() - t;
  };
  for (const [, numBeams] of kinds) await time(numBeams, 4); // warm-up
  const perToken = kinds.map(() => []);
  for (let round = 0; round < (quick ? 1 : 5); round++) {
    for (const [i, [, numBeams]] of kinds.entries()) perToken[i].push(((await time(numBeams, 33)) - (await time(numBeams, 1))) / 32);
  }
  model.dispose();
  const ms = perToken.map(median);
  return kinds.map(([search], i) => ({ table: 'search', shape: 'base', vocab: VOCAB, build, dtype, search, ms_per_token: ms[i], vs_greedy: ms[i] / ms[0] }));
}

/** 64 sentences one at a time and in batches of 8 and 32, greedy and beam 4, on the base shape and the demo. */
async function batches(quick, build) {
  const count = quick ? 16 : 64;
  const rows = [];
  const base = await baseMarian(build, 2.3);
  const sources = Array.from({ length: count }, (_, s) => [...Array.from({ length: 10 + ((s * 7) % 31) }, (_, i) => 3 + ((i * 7919 + s * 104729) % (VOCAB - 4))), EOS]);
  rows.push(...(await batchRows('base', base, sources, { noRepeatNgramSize: 1, maxNewTokens: 64 }, build)));
  base.dispose();
  const demoDir = new URL('../models/en-de-messages/', import.meta.url);
  const held = JSON.parse(readFileSync(new URL('heldout.json', demoDir), 'utf8')).items.map((item) => item.input_ids);
  const demo = await loadModel(demoDir.pathname, { build });
  rows.push(...(await batchRows('demo en-de', demo, held.filter((ids) => ids.length >= 10 && ids.length <= 40).slice(0, count), {}, build)));
  demo.dispose();
  return rows;
}

async function batchRows(shape, model, sources, options, build) {
  const rows = [];
  for (const [search, numBeams] of [['greedy', 1], ['beam 4', 4]]) {
    console.error(`e2e: ${sources.length} sentences, ${shape}, ${search} (${build})`);
    const decodings = [
      [1, async () => { const out = []; for (const src of sources) out.push(await model.generate(src, { ...options, numBeams })); return out; }],
      [8, () => model.generateBatch(sources, { ...options, numBeams, batchSize: 8 })],
      [32, () => model.generateBatch(sources, { ...options, numBeams, batchSize: 32 })],
    ];
    await model.generateBatch(sources.slice(0, 4), { ...options, numBeams }); // warm-up
    const seconds = [];
    let reference = null;
    for (const [batch, decode] of decodings) {
      const t = performance.now();
      const ids = await decode();
      seconds.push((performance.now() - t) / 1000);
      reference ??= ids;
      if (JSON.stringify(ids) !== JSON.stringify(reference)) throw new BenchError(`e2e: ${shape}, ${search}: batches of ${batch} gave other ids than one at a time`);
    }
    const tokens = reference.reduce((n, ids) => n + ids.length, 0);
    decodings.forEach(([batch], i) => rows.push({
      table: 'batch', shape, build, search, batch, sentences_per_second: sources.length / seconds[i], vs_one_at_a_time: seconds[0] / seconds[i], tokens,
    }));
  }
  return rows;
}
