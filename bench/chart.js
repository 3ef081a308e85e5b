// Draws a bar chart (SVG) from a suite's JSON, one group of bars per model, a peer keeping its
// colour in every group and dtype (its q8 bar lighter):
//   peers      (`npm run bench -- peers --json FILE`): end-to-end tokens/s per peer (our build) and dtype
//   translate  (`npm run bench -- translate --json FILE`): sentences/s per peer, backend, dtype and search
// Usage: node bench/chart.js peers|translate FILE [OUT.svg]   (OUT defaults to docs/<suite>.svg)
import { readFileSync, writeFileSync } from 'node:fs';

const CHARTS = {
  peers: {
    title: 'Greedy decoding, end to end: tokens/s (batch 1, 32-token source, 64 steps, 1 thread)',
    value: 'tokens_per_second',
    unit: 'tok/s',
    digits: 0,
    layout: { left: 210, width: 720, label: 90 }, // label: room for the value after the longest bar
    group: (r) => `${r.shape} model`,
    // A run from before the dtype dimension has no dtype: its rows are fp32.
    peer: (r) => (r.build ? `${r.peer} (${r.build})` : r.peer),
    bar: (r) => `${r.build ? `${r.peer} (${r.build})` : r.peer} ${r.dtype ?? 'fp32'}`,
  },
  translate: {
    title: 'Translation, text in, text out: sentences/s (batch 1, 1 thread; transformers.js: greedy only)',
    value: 'sentences_per_second',
    unit: 'sentences/s',
    digits: 1,
    layout: { left: 290, width: 820, label: 130 },
    group: (r) => r.model,
    peer: (r) => `${r.peer} ${r.search}${r.peer === 'wasmformer' ? '' : ` (${r.backend})`}`,
    bar: (r) => `${r.peer === 'wasmformer' ? 'wasmformer' : `transformers.js ${r.backend === 'wasm' ? 'wasm' : 'ort-node'}`} ${r.dtype} ${r.search}`,
  },
};

const [suite, input, output = `docs/${suite}.svg`] = process.argv.slice(2);
const chart = CHARTS[suite];
if (!chart || !input) {
  console.error('usage: node bench/chart.js peers|translate FILE.json [OUT.svg]');
  process.exit(2);
}
const rows = JSON.parse(readFileSync(input, 'utf8')).filter((r) => typeof r[chart.value] === 'number');
writeFileSync(output, svg(chart, rows));
console.error(`wrote ${output}`);

function svg(chart, rows) {
  const groups = [...new Set(rows.map(chart.group))];
  const bars = [...new Set(rows.map(chart.bar))];
  const peers = [...new Set(rows.map(chart.peer))];
  const COLORS = ['#2f6fdb', '#6aa0f7', '#e0772e', '#8c8c8c', '#3aa55d'];
  const color = (row) => COLORS[peers.indexOf(chart.peer(row)) % COLORS.length];
  const opacity = (row) => ((row.dtype ?? 'fp32') === 'q8' ? ' fill-opacity="0.55"' : '');

  const BAR = 22;
  const GAP = 6;
  const { left: LEFT, width: WIDTH, label: LABEL } = chart.layout;
  const groupHeight = bars.length * (BAR + GAP) + 34;
  const height = 40 + groups.length * groupHeight + 20;

  const parts = [];
  let y = 40;
  for (const group of groups) {
    const members = rows.filter((r) => chart.group(r) === group);
    const max = Math.max(...members.map((r) => r[chart.value]));
    parts.push(`<text x="10" y="${y + 14}" font-weight="bold">${group}</text>`);
    y += 24;
    for (const bar of bars) {
      const row = members.find((r) => chart.bar(r) === bar);
      if (!row) continue;
      const w = ((WIDTH - LEFT - LABEL) * row[chart.value]) / max;
      parts.push(
        `<text x="${LEFT - 8}" y="${y + 16}" text-anchor="end">${bar}</text>`,
        `<rect x="${LEFT}" y="${y}" width="${w.toFixed(1)}" height="${BAR}" fill="${color(row)}"${opacity(row)}/>`,
        `<text x="${(LEFT + w + 6).toFixed(1)}" y="${y + 16}">${row[chart.value].toFixed(chart.digits)} ${chart.unit}</text>`,
      );
      y += BAR + GAP;
    }
    y += 10;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="22" font-size="15" font-weight="bold">${chart.title}</text>
${parts.join('\n')}
</svg>
`;
}
