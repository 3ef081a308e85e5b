// WebAssembly memory as a user meets its limits: freed by dispose(), past 2 GiB, and exhausted.
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../../dist/index.js';
import { parseSafetensors, readF32 } from '../../dist/io/index.js';
import { createRuntime, type Runtime } from '../../dist/runtime/index.js';
import { DEMO, readDemo, type Item } from '../demo-model.js';
import { rejectionOf } from '../expect-error.js';
import { BUILD } from '../helpers.js';
import { writeSafetensors, type TensorSpec } from '../io/write-safetensors.js';
import { FIXTURES } from './fixtures.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Collects garbage until finalisation settles: WebAssembly memories go with their last reference. */
async function collect(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const demoConfig = (): Record<string, unknown> => JSON.parse(readFileSync(`${DEMO}config.json`, 'utf8'));
const demoWeights = new Uint8Array(readFileSync(`${DEMO}model.safetensors`));

describe('dispose()', () => {
  it('drops the memory even while the model object is still referenced', async () => {
    const kept: Model[] = [];
    await collect();
    const before = process.memoryUsage().external;
    let bytes = 0;
    for (let i = 0; i < 20; i++) {
      const model = await loadModel(DEMO, { build: BUILD });
      bytes = model.memoryBytes;
      model.dispose();
      kept.push(model);
    }
    await collect();
    const held = process.memoryUsage().external - before;
    // 20 models' memories would be 20 * bytes (94 MB before dispose() let go of them).
    expect(held).toBeLessThan(3 * bytes);
    expect(kept).toHaveLength(20);
    expect(await rejectionOf(kept[0].generate([3, 4]), 'DISPOSED')).toBe('this model was disposed');
  });
});

describe('a model whose memory is over 2 GiB', () => {
  it('loads and decodes the same ids as the small one', async () => {
    // The demo model with max_len 12,000: the attention scratch (nhead x max_len^2 floats) alone
    // is 2.3 GB, and the weights are laid out after it, past 2^31.
    const maxLen = 12_000;
    const tensors: Record<string, TensorSpec> = {};
    for (const [name, entry] of parseSafetensors(demoWeights, 'demo')) {
      tensors[name] = { shape: [...entry.shape], data: demoWeights.subarray(entry.begin, entry.end) };
    }
    // The stored positions, extended past the rows the demo's inputs reach (their values do not matter).
    const pos = tensors['positional_encoding.pos_embedding'];
    const rows = readF32(demoWeights, parseSafetensors(demoWeights, 'demo').get('positional_encoding.pos_embedding')!);
    const long = new Float32Array(maxLen * 128);
    long.set(rows);
    tensors['positional_encoding.pos_embedding'] = { shape: [maxLen, 1, 128], data: new Uint8Array(long.buffer) };
    expect(pos.shape).toEqual([72, 1, 128]);
    const big = await loadModel({ config: { ...demoConfig(), max_len: maxLen }, weights: writeSafetensors(tensors) }, { build: BUILD });
    try {
      expect(big.memoryBytes).toBeGreaterThan(2 ** 31 + 2 ** 26);
      const items = (readDemo('samples.json') as { items: Item[] }).items;
      for (const item of items) expect(await big.generate(item.src_ids), item.text).toEqual(item.greedy_ids);
    } finally {
      big.dispose();
    }
  });
});

describe('thousands of live models', () => {
  it('run out of memory with OUT_OF_MEMORY, not a raw RangeError, and load again once released', async () => {
    const live: Runtime[] = [];
    let refusal: unknown = null;
    try {
      // Every WebAssembly memory reserves its address range: the process runs out at some thousands.
      while (live.length < 100_000) live.push(await createRuntime({ build: BUILD }));
    } catch (e) {
      refusal = e;
    }
    try {
      expect(refusal).toMatchObject({ name: 'WasmformerError', code: 'OUT_OF_MEMORY' });
      expect(live.length).toBeGreaterThan(1000);
      const message = await rejectionOf(loadModel(`${FIXTURES}post_ln_relu_stored_pos`, { build: BUILD }), 'OUT_OF_MEMORY');
      expect(message).toMatch(/^the engine refused a WebAssembly memory of \d+ bytes \(.*\): dispose\(\) models no longer needed$/);
    } finally {
      live.length = 0;
    }
    await collect();
    expect((await loadModel(`${FIXTURES}post_ln_relu_stored_pos`, { build: BUILD })).parameters).toBeGreaterThan(0);
  });
});
