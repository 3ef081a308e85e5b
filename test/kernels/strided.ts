// Strided slices inside guarded regions, shared by the kernel tests: every element of the region
// outside the slice holds GUARD, so a kernel that writes outside its rows or columns is caught.
import { expect } from 'vitest';
import type { Region, Runtime } from '../../dist/runtime/index.js';

export const GUARD = -7777.25;

/** A [rows, cols] slice with row stride ld at element `at` of its own region. */
export interface Slice {
  readonly region: Region;
  readonly at: number;
  readonly rows: number;
  readonly cols: number;
  readonly ld: number;
}

/** A new slice filled with value(i, j), GUARD everywhere else (three guard floats after it). */
export function slice(rt: Runtime, rows: number, cols: number, ld: number, at: number, value: (i: number, j: number) => number): Slice {
  const region = rt.arena.alloc(at + (rows - 1) * ld + cols + 3, 'slice');
  const view = rt.arena.view(region);
  view.fill(GUARD);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) view[at + i * ld + j] = value(i, j);
  return { region, at, rows, cols, ld };
}

/** The slice's contents as a dense [rows, cols] array. */
export function read(rt: Runtime, s: Slice): Float32Array {
  const view = rt.arena.view(s.region);
  const out = new Float32Array(s.rows * s.cols);
  for (let i = 0; i < s.rows; i++) out.set(view.subarray(s.at + i * s.ld, s.at + i * s.ld + s.cols), i * s.cols);
  return out;
}

/** Asserts that every element of the region outside the slice still holds GUARD. */
export function expectGuards(rt: Runtime, s: Slice): void {
  const view = rt.arena.view(s.region);
  for (let e = 0; e < view.length; e++) {
    const i = Math.floor((e - s.at) / s.ld);
    const j = e - s.at - i * s.ld;
    const inside = e >= s.at && i < s.rows && j < s.cols;
    if (!inside && view[e] !== GUARD) expect.fail(`element ${e} outside the slice was overwritten with ${view[e]}`);
  }
}

/** A region holding data, inside a larger one whose four floats on each side hold GUARD. */
export function guarded(rt: Runtime, data: ArrayLike<number>, label: string): Region {
  const outer = rt.arena.alloc(data.length + 8, label);
  rt.arena.view(outer).fill(GUARD);
  const region = { ptr: outer.ptr + 16, length: data.length, label };
  rt.arena.view(region).set(data);
  return region;
}

/** Asserts that the four floats on each side of a `guarded` region still hold GUARD. */
export function expectGuarded(rt: Runtime, region: Region): void {
  const f32 = rt.arena.f32();
  const base = region.ptr >> 2;
  for (let e = 1; e <= 4; e++) {
    if (f32[base - e] !== GUARD || f32[base + region.length + e - 1] !== GUARD) {
      expect.fail(`a guard around ${region.label} was overwritten`);
    }
  }
}
