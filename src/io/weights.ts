import { WasmformerError } from '../errors.js';
import { familyNamed, isMatrix, size, type ModelConfig, type Slot, type TensorSource } from '../families/index.js';
import type { TensorEntry } from './safetensors.js';

/** A slot of the model and the stored tensor that holds it (null: absent, and its `absent` rule applies). */
export interface ResolvedSlot {
  readonly slot: Slot;
  readonly source: TensorSource;
  readonly entry: TensorEntry | null;
}

/** Every slot of a checked file: what the loader reads and parameterCount counts. */
export type Resolved = ReadonlyMap<Slot, ResolvedSlot>;

/** A tensor the family stores for a config: its name, its stored shape, whether it may be absent. */
export interface ExpectedTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly optional: boolean;
}

/**
 * The tensors a checkpoint of this config stores, each once, in checkpoint order (the first of
 * a slot's names; shared and sliced slots give one tensor), positions excepted: their row count
 * is a range. For a config that checkWeights accepted (the list grows with the layer counts).
 */
export function expectedTensors(c: ModelConfig): ExpectedTensor[] {
  const seen = new Map<string, ExpectedTensor>();
  for (const [, s] of familyNamed(c.family).tensors(c)) {
    if (s.sameAs !== undefined || s.positions) continue;
    const name = s.names[0];
    if (!seen.has(name)) seen.set(name, { name, shape: s.stored ?? s.shape, optional: s.absent !== undefined });
  }
  return [...seen.values()];
}

const FLOAT_DTYPES: readonly string[] = ['F32', 'F16', 'BF16'];

/**
 * The tensor beside an I8 matrix that holds its row scales, F32 [rows] (the convention of
 * Hugging Face's compressed-tensors, whose weight_scale sits beside weight): row i of the matrix
 * is its int8 values times scale[i].
 */
export function scaleName(name: string): string {
  return `${name}_scale`;
}

/**
 * Checks a parsed checkpoint against the config: every slot's tensor present (or allowed to be
 * absent), of the right shape and a float dtype, or for a matrix I8 with its row scales beside
 * it (scaleName); tensors the family does not read are ignored, except where they contradict
 * the config. Errors are BAD_TENSOR naming the file and the tensor.
 */
export function checkWeights(c: ModelConfig, entries: ReadonlyMap<string, TensorEntry>, file: string): Resolved {
  const fail = (message: string): never => {
    throw new WasmformerError('BAD_TENSOR', `${file}: ${message}`);
  };
  const family = familyNamed(c.family);
  const resolved = new Map<Slot, ResolvedSlot>();
  // The walk stops at the first missing tensor, so a config claiming 2^53 layers ends at once.
  for (const [slot, source] of family.tensors(c)) {
    if (source.sameAs !== undefined) {
      resolved.set(slot, { slot, source, entry: resolved.get(source.sameAs)?.entry ?? null });
      continue;
    }
    const present = source.names.map((name) => entries.get(name)).filter((e): e is TensorEntry => e !== undefined);
    for (const entry of present) checkEntry(c, source, entry, entries, fail);
    if (present.length === 0 && source.absent === undefined) {
      const shape = source.stored ?? source.shape;
      fail(`missing tensor ${JSON.stringify(source.names[0])} [${shape.join(', ')}]${others(source.names)}${counts(c, entries.size)}`);
    }
    resolved.set(slot, { slot, source, entry: present[0] ?? null });
  }
  for (const name of entries.keys()) {
    const why = family.contradiction(c, name);
    if (why !== null) fail(`tensor ${JSON.stringify(name)} ${why}`);
  }
  return resolved;
}

/** " (the config needs N tensors, the file has M)" when the file has fewer than the config needs. */
function counts(c: ModelConfig, has: number): string {
  const needed = new Set<string>();
  for (const [, s] of familyNamed(c.family).tensors(c)) {
    if (s.sameAs === undefined && s.absent === undefined) needed.add(s.names[0]);
    if (needed.size > 2 * has + 100) return ''; // a config claiming 2^53 layers: no count helps there
  }
  return needed.size > has ? ` (the config needs ${needed.size} tensors, the file has ${has})` : '';
}

function others(names: readonly string[]): string {
  return names.length > 1 ? ` (or ${names.slice(1).map((n) => JSON.stringify(n)).join(', ')})` : '';
}

function checkEntry(c: ModelConfig, source: TensorSource, entry: TensorEntry, entries: ReadonlyMap<string, TensorEntry>, fail: (m: string) => never): void {
  const tensor = `tensor ${JSON.stringify(entry.name)}`;
  const int8 = entry.dtype === 'I8' && isMatrix(source);
  if (entry.dtype === 'I8' && !int8) {
    fail(`${tensor} has dtype I8, which only matrices may have: norms, biases and positions are F32, F16 or BF16`);
  }
  if (!int8 && !FLOAT_DTYPES.includes(entry.dtype)) {
    fail(`${tensor} has dtype ${entry.dtype}, expected F32, F16 or BF16${isMatrix(source) ? ` (or I8 with ${JSON.stringify(scaleName(entry.name))})` : ''}`);
  }
  const s = entry.shape;
  if (source.positions) {
    // [P, d_model] or, as the tutorial's buffer is, [P, 1, d_model]; its first max_len rows are used.
    const [rows, d] = source.shape;
    const ok = (s.length === 2 || (s.length === 3 && s[1] === 1)) && s[s.length - 1] === d && s[0] >= rows;
    if (!ok) fail(`${tensor} has shape [${s.join(', ')}], expected [P, ${d}] or [P, 1, ${d}] with P >= ${familyNamed(c.family).fields.maxLen} (${rows})`);
    return;
  }
  const want = source.stored ?? source.shape;
  if (!(s.length === want.length && s.every((x, i) => x === want[i]))) {
    fail(`${tensor} has shape [${s.join(', ')}], expected [${want.join(', ')}]`);
  }
  if (int8) checkScales(entry, entries, fail);
}

/** An I8 matrix's scales: F32 [rows] under scaleName. */
function checkScales(entry: TensorEntry, entries: ReadonlyMap<string, TensorEntry>, fail: (m: string) => never): void {
  const name = scaleName(entry.name);
  const rows = entry.shape[0];
  const scales = entries.get(name);
  const what = `F32 [${rows}]: one scale per row of I8 ${JSON.stringify(entry.name)}`;
  if (scales === undefined) fail(`tensor ${JSON.stringify(entry.name)} has dtype I8 but the file has no ${JSON.stringify(name)} beside it (${what})`);
  if (scales.dtype !== 'F32' || scales.shape.length !== 1 || scales.shape[0] !== rows) {
    fail(`tensor ${JSON.stringify(name)} has dtype ${scales.dtype} and shape [${scales.shape.join(', ')}], expected ${what}`);
  }
}

/**
 * The number of parameters, as the family's own library counts them: each stored matrix once
 * (tied and shared ones too), buffers not at all, computed parameters (Marian's sinusoidal
 * tables) as if stored.
 */
export function parameterCount(resolved: Resolved): number {
  const counted = new Set<string>();
  let n = 0;
  for (const { slot, source, entry } of resolved.values()) {
    if (source.sameAs !== undefined || source.counted === false) continue;
    if (entry === null && source.absent !== 'computed') continue; // a bias that is zero, a tied generator
    const key = entry === null ? slot : `${entry.name}:${source.row ?? 0}`;
    if (counted.has(key)) continue;
    counted.add(key);
    n += size(source.shape);
  }
  return n;
}
