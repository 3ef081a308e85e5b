// The benchmark entry: `npm run bench -- <suite> [--json FILE] [suite options]`.
// A suite is one file, bench/<suite>.js, exporting:
//   options  node:util parseArgs option specs of its own flags (may be omitted)
//   columns  [{ key, title, digits? }]: the table's columns, in order; or
//   tables   [{ title, columns, rows: (row) => boolean }]: several tables, each of some rows;
//            or { title, columns, derive: (rows) => rows }: a table computed from the rows
//            (ratios, say), printed but not written to the JSON file
//   run({ ...flags, builds }) -> rows (plain objects, one per table line and JSON element)
// This file owns what every suite shares: the relaxed-SIMD flag, the peers' install, argument
// parsing, the table and the JSON file.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { supportedBuilds } from '../dist/runtime/index.js';
import { BenchError } from './measure.js';

const RELAXED_FLAG = '--experimental-wasm-relaxed-simd';
const USAGE = 'usage: npm run bench -- <suite> [--json FILE] [suite options]   (suites: kernels, e2e, peers, translate, threads, load, accuracy)';

// Node 20 validates relaxed SIMD only behind a flag: re-run this very command with it, so that
// one run measures both builds.
if (!supportedBuilds().includes('relaxed') && !process.execArgv.includes(RELAXED_FLAG)) rerun([RELAXED_FLAG]);

/** Runs this very command again in a new process, with extra node flags, and exits with its status. */
function rerun(flags) {
  const args = [...process.execArgv, ...flags, ...process.argv.slice(1)];
  const child = spawnSync(process.execPath, args, { stdio: 'inherit' });
  process.exit(child.status ?? 1);
}

const suiteName = process.argv[2];
const suiteFile = new URL(`./${suiteName}.js`, import.meta.url);
if (!suiteName || !/^[a-z0-9-]+$/.test(suiteName) || !existsSync(suiteFile)) fail(USAGE, 2);
const suite = await importSuite(suiteFile);

let values;
try {
  ({ values } = parseArgs({ args: process.argv.slice(3), options: { json: { type: 'string' }, ...suite.options } }));
} catch (e) {
  fail(`${e.message}\n${USAGE}`, 2);
}
// simd first: the baseline build, then relaxed.
const builds = supportedBuilds().reverse();
const how = !builds.includes('relaxed') ? ' (this engine does not validate relaxed SIMD)'
  : process.execArgv.includes(RELAXED_FLAG) ? ` (relaxed SIMD via node ${RELAXED_FLAG})` : '';
console.error(`${suiteName}: node ${process.version}, builds ${builds.join(', ')}${how}`);

let rows;
try {
  rows = await suite.run({ ...values, builds });
} catch (e) {
  if (e instanceof BenchError) fail(`\n${e.message}`, 1);
  throw e;
}
for (const table of suite.tables ?? [{ columns: suite.columns }]) {
  if (table.title) console.log(`\n${table.title}\n`);
  printTable(table.derive ? table.derive(rows) : table.rows ? rows.filter(table.rows) : rows, table.columns);
}
if (values.json) writeJson(values.json, rows);

/**
 * Imports a suite; when it needs a peer (tfjs, onnxruntime, ...) that is not installed yet,
 * installs bench/package.json's peers into bench/node_modules first. They are the benchmarks'
 * own: the library's `npm ci` never installs them.
 */
async function importSuite(file) {
  try {
    return await import(file.href);
  } catch (e) {
    const peers = Object.keys(JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')).dependencies);
    const missing = e?.code === 'ERR_MODULE_NOT_FOUND' && peers.find((name) => e.message.includes(`'${name}'`));
    if (!missing) throw e;
    console.error(`${suiteName}: installing the benchmark peers into bench/node_modules (${missing} is missing)`);
    // onnxruntime-node's postinstall would fetch optional GPU binaries from outside the npm registry.
    const npm = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], {
      cwd: new URL('.', import.meta.url),
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
    });
    if (npm.status !== 0) fail(`${suiteName}: npm ci in bench/ failed`, 1);
    // The loader remembers the failed import: run the same command again in a new process.
    rerun([]);
  }
}

/** Prints rows as an aligned text table on stdout; numbers get the column's digits. */
function printTable(rows, columns) {
  const cell = (row, c) => {
    const v = row[c.key];
    if (typeof v === 'number') return Number.isFinite(v) ? v.toFixed(c.digits ?? 2) : '-';
    return v == null ? '-' : String(v);
  };
  const lines = [columns.map((c) => c.title), ...rows.map((row) => columns.map((c) => cell(row, c)))];
  const widths = columns.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  const numeric = columns.map((c) => rows.some((row) => typeof row[c.key] === 'number'));
  const format = (l) => l.map((s, i) => (numeric[i] ? s.padStart(widths[i]) : s.padEnd(widths[i]))).join('  ');
  console.log([format(lines[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.slice(1).map(format)].join('\n'));
}

/** Writes rows as one JSON array. */
function writeJson(file, rows) {
  writeFileSync(file, JSON.stringify(rows, null, 2) + '\n');
  console.error(`wrote ${rows.length} rows to ${file}`);
}

function fail(message, code) {
  console.error(message);
  process.exit(code);
}
