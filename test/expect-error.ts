import { expect } from 'vitest';
import { WasmformerError } from '../dist/errors.js';

/** Runs f, asserts it throws a WasmformerError with this code, and returns the message. */
export function errorOf(f: () => unknown, code: string): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(WasmformerError);
    expect((e as WasmformerError).code).toBe(code);
    return (e as Error).message;
  }
  throw new Error('expected a WasmformerError, nothing was thrown');
}

/** The same for a promise. */
export async function rejectionOf(p: Promise<unknown>, code: string): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(WasmformerError);
    expect((e as WasmformerError).code).toBe(code);
    return (e as Error).message;
  }
  throw new Error('expected a WasmformerError, nothing was thrown');
}
