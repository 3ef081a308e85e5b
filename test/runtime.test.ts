import { describe, expect, it } from 'vitest';
import { WasmformerError } from '../dist/errors.js';
import { chooseBuild, createRuntime, Heap, supportedBuilds } from '../dist/runtime/index.js';
import { BUILD, runtime } from './helpers.js';

describe('runtime', () => {
  it('chooses a build this engine validates and reports it', async () => {
    const rt = await runtime();
    expect(supportedBuilds()).toContain(rt.build);
    if (BUILD !== 'auto') expect(rt.build).toBe(BUILD);
    expect(chooseBuild('auto')).toBe(supportedBuilds()[0]);
  });

  it('reports the build of a module given as bytes, whatever build was asked for', async () => {
    const { readFileSync } = await import('node:fs');
    const simd = readFileSync(new URL('../dist/wasmformer.simd.wasm', import.meta.url));
    const rt = await createRuntime({ wasm: new Uint8Array(simd) });
    expect(rt.build).toBe('simd');
  });

  it('refuses relaxed SIMD on an engine that does not validate it, naming the flag', () => {
    if (supportedBuilds().includes('relaxed')) return; // covered by the relaxed project
    expect(() => chooseBuild('relaxed')).toThrow(/experimental-wasm-relaxed-simd/);
  });

  it('hands out 16-byte aligned, zeroed regions above the static data, growing the memory', async () => {
    const rt = await runtime();
    const first = rt.arena.alloc(3, 'a');
    expect(first.ptr % 16).toBe(0);
    expect(first.ptr).toBeGreaterThanOrEqual(rt.kernels.raw.heapBase());
    const before = rt.memory.buffer.byteLength;
    const big = rt.arena.alloc(before, 'big'); // four times the current size in bytes
    expect(big.ptr % 16).toBe(0);
    expect(big.ptr).toBeGreaterThanOrEqual(first.ptr + 16);
    expect(rt.memory.buffer.byteLength).toBeGreaterThan(before);
    const view = rt.arena.view(big);
    expect(view.length).toBe(before);
    expect(view.every((x) => x === 0)).toBe(true);
    view.fill(7);
    const mark = rt.arena.mark();
    rt.arena.alloc(10, 'temp');
    rt.arena.reset(mark);
    expect(rt.arena.alloc(10, 'again').ptr).toBe(mark);
  });

  it('gives the memory past the arena to a heap: the arena then refuses to allocate over its blocks', async () => {
    const rt = await runtime();
    const kept = rt.arena.alloc(8, 'before');
    const heap = new Heap(rt.arena);
    const block = heap.alloc(1000, 'a decoding');
    expect(block.ptr).toBeGreaterThanOrEqual(kept.ptr + 32);
    expect(() => rt.arena.alloc(4, 'late')).toThrow(new WasmformerError('BAD_ARGUMENT', "cannot allocate late: the memory past the arena's last region belongs to the heap of decodings"));
    heap.free(block);
  });

  it('renews views after the memory grows', async () => {
    const rt = await runtime();
    const r = rt.arena.alloc(4, 'r');
    const old = rt.arena.f32();
    rt.arena.alloc(1 << 20, 'grow');
    expect(old.length).toBe(0); // the old view's buffer was detached by the grow
    const now = rt.arena.f32();
    expect(now.length).toBe(rt.memory.buffer.byteLength / 4);
    now[r.ptr >> 2] = 5;
    expect(rt.arena.view(r)[0]).toBe(5);
  });

  it('rejects a kernel call whose slices fall outside their regions, before calling WASM', async () => {
    const rt = await runtime();
    const x = rt.arena.alloc(10, 'x');
    const y = rt.arena.alloc(9, 'y');
    expect(() => rt.kernels.add(y, x, x, 10)).toThrow(WasmformerError);
    expect(() => rt.kernels.add(y, x, x, 10)).toThrow(/out .*does not fit y of 9 elements/);
    expect(() => rt.kernels.add(y, x, x, 0)).toThrow(/n must be a positive integer/);
    expect(() => rt.kernels.softmax(x, 2, 3, 3, 3, 1, -1, null)).toThrow(/does not fit x/);
  });
});
