import { WasmformerError } from '../errors.js';
import { describe } from './describe.js';

/** A JSON object read from a config file (config.json, generation_config.json), or a BAD_CONFIG error naming it. */
export function jsonObject(json: unknown, file: string): Record<string, unknown> {
  let obj = json;
  if (typeof json === 'string') {
    try {
      obj = JSON.parse(json);
    } catch (e) {
      throw new WasmformerError('BAD_CONFIG', `${file}: not valid JSON (${(e as Error).message})`);
    }
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw new WasmformerError('BAD_CONFIG', `${file}: must be a JSON object, got ${describe(obj)}`);
  }
  return obj as Record<string, unknown>;
}

/**
 * Typed, named reads of a config file's fields; each failure is a BAD_CONFIG error naming the
 * file, the field and the bad value. A field read with a default may be absent (or null, as
 * Hugging Face writes unset fields); without one it is required.
 */
export class Fields {
  constructor(
    private readonly obj: Record<string, unknown>,
    readonly file: string,
  ) {}

  has(name: string): boolean {
    return Object.hasOwn(this.obj, name) && this.obj[name] !== undefined && this.obj[name] !== null;
  }

  positiveInt(name: string, fallback?: number): number {
    return this.read(name, fallback, (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1, 'a positive integer');
  }

  nonNegativeInt(name: string, fallback?: number): number {
    return this.read(name, fallback, isNonNegativeInt, 'a non-negative integer');
  }

  positiveFloat(name: string, fallback?: number): number {
    return this.read(name, fallback, (v) => typeof v === 'number' && Number.isFinite(v) && v > 0, 'a finite number > 0');
  }

  /** Any finite number (length_penalty may be negative). */
  finite(name: string, fallback?: number): number {
    return this.read(name, fallback, (v) => typeof v === 'number' && Number.isFinite(v), 'a finite number');
  }

  /** The field's value as it is (for fields with more than one type). */
  raw(name: string): unknown {
    return this.obj[name];
  }

  bool(name: string, fallback?: boolean): boolean {
    return this.read(name, fallback, (v) => typeof v === 'boolean', 'true or false');
  }

  oneOf<T extends string>(name: string, values: readonly T[], fallback?: T): T {
    return this.read(name, fallback, (v) => values.includes(v as T), values.map((s) => `"${s}"`).join(' or '));
  }

  /** A list of id lists, as bad_words_ids is. */
  idLists(name: string, fallback: number[][]): number[][] {
    const ok = (v: unknown): boolean => Array.isArray(v) && v.every((s) => Array.isArray(s) && s.length > 0 && s.every(isNonNegativeInt));
    return this.read(name, fallback, ok, 'a list of non-empty lists of token ids');
  }

  /** An id, or null when the field is absent or null. */
  optionalId(name: string, fallback: number | null): number | null {
    return this.has(name) ? this.nonNegativeInt(name) : fallback;
  }

  private read<T>(name: string, fallback: T | undefined, ok: (v: unknown) => boolean, want: string): T {
    if (fallback !== undefined && !this.has(name)) return fallback;
    if (!Object.hasOwn(this.obj, name) || this.obj[name] === undefined) {
      throw new WasmformerError('BAD_CONFIG', `${this.file}: missing field "${name}"`);
    }
    const v = this.obj[name];
    if (!ok(v)) this.fail(name, want, v);
    return v as T;
  }

  /** A BAD_CONFIG error about a field's value. */
  fail(name: string, want: string, got: unknown): never {
    throw new WasmformerError('BAD_CONFIG', `${this.file}: field "${name}" must be ${want}, got ${describe(got)}`);
  }
}

function isNonNegativeInt(v: unknown): boolean {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** A BAD_CONFIG error naming the file. */
export function configError(file: string, message: string): WasmformerError {
  return new WasmformerError('BAD_CONFIG', `${file}: ${message}`);
}
