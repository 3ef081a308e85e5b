import { createRuntime, type Build, type Region, type Runtime } from '../dist/runtime/index.js';

/** The build this test project runs (vitest.config.ts sets it per project). */
export const BUILD = (process.env.WASMFORMER_BUILD ?? 'auto') as Build | 'auto';

export function runtime(): Promise<Runtime> {
  return createRuntime({ build: BUILD });
}

/** A seeded generator of uniform floats in [lo, hi) (mulberry32), so failures reproduce. */
export function rng(seed: number): (lo?: number, hi?: number) => number {
  let s = seed >>> 0;
  return (lo = -1, hi = 1) => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    return lo + (hi - lo) * u;
  };
}

/** Seeded random choices for fuzz tests: an int below n, an element, a coin with probability p. */
export type Rand = { int: (n: number) => number; pick: <T>(xs: readonly T[]) => T; chance: (p: number) => boolean };

export function random(seed: number): Rand {
  const u = rng(seed);
  const int = (n: number): number => Math.floor(u(0, n));
  return { int, pick: (xs) => xs[int(xs.length)], chance: (p) => u(0, 1) < p };
}

/** A region filled with random floats; returns it with a JS copy of its contents. */
export function randomRegion(rt: Runtime, length: number, rand: () => number, label = 'test'): [Region, Float32Array] {
  const region = rt.arena.alloc(length, label);
  const data = Float32Array.from({ length }, () => rand());
  rt.arena.view(region).set(data);
  return [region, data];
}

/**
 * Asserts |got - want| <= atol + rtol * |want| for every element, and reports the worst one
 * (index, both values) when it does not hold.
 */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol = 0): void {
  if (got.length !== want.length) throw new Error(`length ${got.length} != ${want.length}`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    const excess = err - (atol + rtol * Math.abs(want[i]));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    throw new Error(`element ${worst}: got ${got[worst]}, want ${want[worst]} (atol ${atol}, rtol ${rtol})`);
  }
}

/** The sizes every kernel is tested at, in every dimension (issue #2). */
export const ODD_SIZES = [1, 3, 5, 7, 8, 9, 17, 31, 33, 63, 65, 127];

/** got holds want's float32 bits exactly (NaN payloads and -0 included); reports the first element that differs. */
export function expectSameBits(got: Float32Array, want: Float32Array, what = ''): void {
  const a = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const b = new Uint32Array(want.buffer, want.byteOffset, want.length);
  if (a.length !== b.length) throw new Error(`${what}: length ${a.length} != ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) throw new Error(`${what}: element ${i} is ${got[i]}, want ${want[i]} (bits ${a[i].toString(16)} != ${b[i].toString(16)})`);
  }
}
