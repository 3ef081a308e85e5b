// The example page: translate as the person types, stream the output token by token, and draw
// the decoder's cross-attention of a chosen layer and head as a heat map. The model runs in a
// Web Worker (wasmformer/worker), so the page stays responsive however long a decoding takes.
// The demo is the English -> German Marian model; ?model=/path/to/folder/ loads another folder
// (/models/numbers/, the character-level demo, say). The stream is greedy (so its attention can be
// drawn); when the model's generation config asks for beams, the beam search's translation follows.
// The kernels run on the machine's cores (threads: 'auto', at most 4) where the page is
// cross-origin isolated (examples/serve.js sends the headers); ?threads=N asks for N.
import { AttentionMaps, WasmformerError } from 'wasmformer';
import { createWorkerTranslator } from 'wasmformer/worker';

const query = new URLSearchParams(location.search);
const MODEL_URL = query.get('model') ?? '/models/en-de-messages/';
const THREADS = query.has('threads') ? Number(query.get('threads')) : 'auto';

const $ = (id) => document.getElementById(id);
const source = $('source');
const output = $('output');
const errorLine = $('error');
const statusLine = $('status');
const beamLine = $('beam');
const layerSelect = $('layer');
const headSelect = $('head');
const canvas = $('heatmap');

let translator = null;
let modelInfo = '';
/** Cancels the decoding in progress, if any. */
let cancel = () => {};
/** What the heat map shows: the last decoding's maps and the labels of its rows and columns. */
let view = { maps: null, sourceLabels: [], outputLabels: [] };

start().catch((e) => {
  statusLine.textContent = 'The model could not be loaded.';
  showError(e);
});

async function start() {
  const begin = performance.now();
  translator = await createWorkerTranslator(MODEL_URL, { onProgress: showProgress, threads: THREADS });
  const { config, parameters, build, threads, threadsReason } = translator;
  const ms = performance.now() - begin;
  const kernels = `${build === 'relaxed' ? 'relaxed SIMD' : 'SIMD128'} kernels on ${threads} thread${threads === 1 ? '' : 's'}`;
  modelInfo = `${(parameters / 1e6).toFixed(1)}M parameters, loaded in ${ms.toFixed(0)} ms, ${kernels}, in a worker`;
  if (threadsReason !== null) modelInfo += ` (${threadsReason})`;
  statusLine.textContent = modelInfo;
  fillSelect(layerSelect, config.numDecoderLayers);
  fillSelect(headSelect, config.decoderHeads);
  layerSelect.addEventListener('change', draw);
  headSelect.addEventListener('change', draw);
  source.addEventListener('input', () => translate(source.value.trim()));
  source.disabled = false;
  source.focus();
  translate(source.value.trim());
}

/**
 * Decodes text in the worker, cancelling the decoding before it, and shows each token as it
 * arrives; never throws (errors go to the page).
 */
async function translate(text) {
  cancel();
  const controller = new AbortController();
  cancel = () => controller.abort();
  delete output.dataset.source;
  const maps = new AttentionMaps();
  view = { maps, sourceLabels: [], outputLabels: [] };
  output.textContent = '';
  beamLine.textContent = '';
  errorLine.textContent = '';
  statusLine.textContent = modelInfo;
  output.classList.add('running');
  try {
    if (text !== '') await decode(text, maps, controller.signal);
  } catch (e) {
    if (controller.signal.aborted) return; // a newer text took over
    showError(e);
  }
  output.classList.remove('running');
  draw(); // also the last step, the one that chose eos, or nothing when there was no text
  // Marks the text whose decoding ended (done or failed), for anyone waiting on the page.
  output.dataset.source = text;
}

async function decode(text, maps, signal) {
  view.sourceLabels = (await translator.tokenize(text)).pieces;
  const start = performance.now();
  for await (const piece of translator.stream(text, { attention: maps, signal })) {
    output.textContent += piece;
    view.outputLabels.push(piece);
    drawSoon();
  }
  const ms = performance.now() - start;
  const rate = Math.round((maps.steps * 1000) / ms);
  statusLine.textContent = `${modelInfo} · ${maps.steps} steps in ${ms.toFixed(1)} ms: ${rate} tokens/s`;
  const beams = translator.config.generation.numBeams;
  if (beams > 1) {
    const t = performance.now();
    const best = await translator.translate(text, { signal });
    beamLine.textContent = `beam search, ${beams} beams (${(performance.now() - t).toFixed(0)} ms): ${best}`;
  }
}

/** Redraws the heat map at the next frame, once however many tokens arrive before it. */
let frame = 0;
function drawSoon() {
  frame ||= requestAnimationFrame(() => {
    frame = 0;
    draw();
  });
}

function showProgress(loaded, total) {
  const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;
  statusLine.textContent = total > 0
    ? `Loading the model: ${Math.round((100 * loaded) / total)}% of ${mb(total)}`
    : `Loading the model: ${mb(loaded)}`;
}

/** A WasmformerError's message says what was wrong; anything else is a bug worth the console too. */
function showError(e) {
  if (e instanceof WasmformerError) {
    errorLine.textContent = e.message;
  } else {
    errorLine.textContent = `Unexpected error: ${e?.message ?? e}`;
    console.error(e);
  }
}

function fillSelect(select, count) {
  for (let i = 0; i < count; i++) select.add(new Option(String(i))); // numbered as maps.cross(layer, head) counts
}

// Heat map: one column per decoding step (output token), one row per source token. Columns
// narrow as the output grows, so the map always fits the page's width, and its cells are
// drawn as one image: a frame's work stays small however long the decoding.
const CELL = 26; // largest cell side, CSS pixels
const FONT = 13; // label size, CSS pixels
const RAMP = [[247, 251, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]];
const cells = document.createElement('canvas'); // one pixel per cell, scaled up onto the page

function draw() {
  const { maps, sourceLabels, outputLabels } = view;
  const steps = maps?.steps ?? 0;
  const rows = sourceLabels.length;
  const ctx = canvas.getContext('2d');
  if (steps === 0 || rows === 0) {
    canvas.width = canvas.height = 0;
    return;
  }
  // Room for the labels: source tokens on the left, output tokens written upwards on top.
  ctx.font = `${FONT}px ui-monospace, monospace`;
  const textWidth = (labels) => Math.ceil(Math.max(0, ...labels.map((l) => ctx.measureText(shown(l)).width)));
  const LEFT = textWidth(sourceLabels) + 8;
  const room = output.clientWidth - LEFT; // the width of the page's column
  const columnWidth = Math.max(1, Math.min(CELL, Math.floor(room / steps)));
  const rowHeight = Math.max(columnWidth, 16);
  const labelled = columnWidth >= 10; // room for a label per output token
  const TOP = labelled ? textWidth([...outputLabels, '<eos>']) + 8 : 4;
  const width = LEFT + steps * columnWidth;
  const height = TOP + rows * rowHeight;
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * dpr);
  canvas.height = Math.round(height * dpr);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);

  const weights = maps.cross(Number(layerSelect.value), Number(headSelect.value)); // [steps, srcLen]
  cells.width = steps;
  cells.height = rows;
  const image = new ImageData(steps, rows);
  for (let t = 0; t < steps; t++) {
    for (let s = 0; s < rows; s++) {
      const at = 4 * (s * steps + t);
      image.data.set(color(weights[t * maps.srcLen + s]), at);
      image.data[at + 3] = 255;
    }
  }
  cells.getContext('2d').putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(cells, LEFT, TOP, steps * columnWidth, rows * rowHeight);

  ctx.fillStyle = '#1b1f24';
  ctx.font = `${FONT}px ui-monospace, monospace`;
  ctx.textBaseline = 'middle';
  if (labelled) {
    ctx.textAlign = 'left';
    for (let t = 0; t < steps; t++) {
      ctx.save();
      ctx.translate(LEFT + (t + 0.5) * columnWidth, TOP - 4);
      ctx.rotate(-Math.PI / 2);
      ctx.fillText(shown(outputLabels[t] ?? '<eos>'), 0, 0); // the step after the last token is the one that chose eos
      ctx.restore();
    }
  }
  ctx.textAlign = 'right';
  for (let s = 0; s < rows; s++) ctx.fillText(shown(sourceLabels[s]), LEFT - 6, TOP + (s + 0.5) * rowHeight);
}

/** A token as an axis label: a lone space made visible. */
function shown(text) {
  return text === ' ' ? '␣' : text;
}

/** A weight in [0, 1] as [r, g, b], white to dark blue, linear between the ramp's stops. */
function color(w) {
  const x = Math.min(Math.max(w, 0), 1) * (RAMP.length - 1);
  const i = Math.min(Math.floor(x), RAMP.length - 2);
  const f = x - i;
  return RAMP[i].map((c, k) => Math.round(c + f * (RAMP[i + 1][k] - c)));
}
