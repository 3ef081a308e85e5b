import { WasmformerError } from './errors.js';
import { describe } from './io/describe.js';

/** What each option of a call must be: its description for errors, and the test of a value. */
export type OptionSpec = Readonly<Record<string, readonly [what: string, ok: (value: unknown) => boolean]>>;

/**
 * Checks a call's options: an object (or undefined) with only the spec's keys, each undefined or
 * of its type. A typo'd or mistyped option is a BAD_ARGUMENT error naming it, never ignored.
 */
export function checkOptions(options: unknown, spec: OptionSpec): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new WasmformerError('BAD_ARGUMENT', `options must be an object, got ${describe(options)}`);
  }
  for (const [key, value] of Object.entries(options)) {
    if (!Object.hasOwn(spec, key)) {
      throw new WasmformerError('BAD_ARGUMENT', `options.${key} is not an option (${Object.keys(spec).join(', ')})`);
    }
    const [what, ok] = spec[key];
    if (value !== undefined && !ok(value)) {
      throw new WasmformerError('BAD_ARGUMENT', `options.${key} must be ${what}, got ${describe(value)}`);
    }
  }
}

export const isFunction = (v: unknown): boolean => typeof v === 'function';
export const isNumber = (v: unknown): boolean => typeof v === 'number';
export const isAbortSignal = (v: unknown): boolean => typeof AbortSignal !== 'undefined' && v instanceof AbortSignal;
