// Draws docs/peers.svg from `npm run bench -- peers --json FILE`: end-to-end tokens/s, a bar per
// peer (our build) and dtype, one group of bars per model shape; a peer keeps its colour in
// every dtype, its q8 bar lighter. Usage: node bench/chart.js FILE [OUT.svg]
import { readFileSync, writeFileSync } from 'node:fs';

const [input, output = 'docs/peers.svg'] = process.argv.slice(2);
if (!input) {
  console.error('usage: node bench/chart.js PEERS.json [OUT.svg]');
  process.exit(2);
}
// A run from before the dtype dimension has no dtype: its rows are fp32.
const rows = JSON.parse(readFileSync(input, 'utf8'))
  .filter((r) => typeof r.tokens_per_second === 'number')
  .map((r) => ({ ...r, peer: r.build ? `${r.peer} (${r.build})` : r.peer, dtype: r.dtype ?? 'fp32' }))
  .map((r) => ({ ...r, bar: `${r.peer} ${r.dtype}` }));
const shapes = [...new Set(rows.map((r) => r.shape))];
const bars = [...new Set(rows.map((r) => r.bar))];
const peers = [...new Set(rows.map((r) => r.peer))];
const COLORS = ['#2f6fdb', '#6aa0f7', '#e0772e', '#8c8c8c', '#3aa55d'];
const color = (row) => COLORS[peers.indexOf(row.peer) % COLORS.length];
const opacity = (row) => (row.dtype === 'q8' ? ' fill-opacity="0.55"' : '');

const BAR = 22;
const GAP = 6;
const LEFT = 210;
const WIDTH = 720;
const groupHeight = bars.length * (BAR + GAP) + 34;
const height = 40 + shapes.length * groupHeight + 20;

const parts = [];
let y = 40;
for (const shape of shapes) {
  const group = rows.filter((r) => r.shape === shape);
  const max = Math.max(...group.map((r) => r.tokens_per_second));
  parts.push(`<text x="10" y="${y + 14}" font-weight="bold">${shape} model</text>`);
  y += 24;
  for (const bar of bars) {
    const row = group.find((r) => r.bar === bar);
    if (!row) continue;
    const w = ((WIDTH - LEFT - 90) * row.tokens_per_second) / max;
    parts.push(
      `<text x="${LEFT - 8}" y="${y + 16}" text-anchor="end">${bar}</text>`,
      `<rect x="${LEFT}" y="${y}" width="${w.toFixed(1)}" height="${BAR}" fill="${color(row)}"${opacity(row)}/>`,
      `<text x="${(LEFT + w + 6).toFixed(1)}" y="${y + 16}">${Math.round(row.tokens_per_second)} tok/s</text>`,
    );
    y += BAR + GAP;
  }
  y += 10;
}

const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="22" font-size="15" font-weight="bold">Greedy decoding, end to end: tokens/s (batch 1, 32-token source, 64 steps, 1 thread)</text>
${parts.join('\n')}
</svg>
`;
writeFileSync(output, svg);
console.error(`wrote ${output}`);
