import { WasmformerError } from '../errors.js';
import { describe } from './describe.js';

/** A model's hyperparameters: config.json of the model format, in camelCase. */
export interface ModelConfig {
  readonly dModel: number;
  readonly nhead: number;
  readonly numEncoderLayers: number;
  readonly numDecoderLayers: number;
  readonly dimFeedforward: number;
  readonly activation: 'relu' | 'gelu';
  readonly normFirst: boolean;
  readonly layerNormEps: number;
  readonly finalNorm: boolean;
  readonly scaleEmbedding: boolean;
  readonly srcVocabSize: number;
  readonly tgtVocabSize: number;
  readonly maxLen: number;
  readonly padId: number;
  readonly bosId: number;
  readonly eosId: number;
}

/**
 * Reads and checks config.json, given parsed (any value) or as its text. Every field of the
 * format is required; unknown fields are ignored. Errors are BAD_CONFIG naming file and field.
 */
export function parseConfig(json: unknown, file: string): ModelConfig {
  const obj = typeof json === 'string' ? parseJson(json, file) : json;
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw new WasmformerError('BAD_CONFIG', `${file}: must be a JSON object, got ${describe(obj)}`);
  }
  const fields = new Fields(obj as Record<string, unknown>, file);
  const config: ModelConfig = {
    dModel: fields.positiveInt('d_model'),
    nhead: fields.positiveInt('nhead'),
    numEncoderLayers: fields.positiveInt('num_encoder_layers'),
    numDecoderLayers: fields.positiveInt('num_decoder_layers'),
    dimFeedforward: fields.positiveInt('dim_feedforward'),
    activation: fields.oneOf('activation', ['relu', 'gelu'] as const),
    normFirst: fields.bool('norm_first'),
    layerNormEps: fields.positiveFloat('layer_norm_eps'),
    finalNorm: fields.bool('final_norm'),
    scaleEmbedding: fields.bool('scale_embedding'),
    srcVocabSize: fields.positiveInt('src_vocab_size'),
    tgtVocabSize: fields.positiveInt('tgt_vocab_size'),
    maxLen: fields.positiveInt('max_len'),
    padId: fields.nonNegativeInt('pad_id'),
    bosId: fields.nonNegativeInt('bos_id'),
    eosId: fields.nonNegativeInt('eos_id'),
  };
  checkConsistent(config, file);
  // Frozen: a model sizes its memory by these numbers, so no caller may change them afterwards.
  return Object.freeze(config);
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new WasmformerError('BAD_CONFIG', `${file}: not valid JSON (${(e as Error).message})`);
  }
}

/** The relations between fields: heads split d_model; special ids are inside the vocabularies. */
function checkConsistent(c: ModelConfig, file: string): void {
  const fail = (message: string): never => {
    throw new WasmformerError('BAD_CONFIG', `${file}: ${message}`);
  };
  if (c.dModel % c.nhead !== 0) fail(`d_model (${c.dModel}) is not divisible by nhead (${c.nhead})`);
  // A decoder input is at least [bos, token]: one position cannot generate anything.
  if (c.maxLen < 2) fail(`field "max_len" must be at least 2, got ${c.maxLen}`);
  for (const [field, id] of [['pad_id', c.padId], ['bos_id', c.bosId], ['eos_id', c.eosId]] as const) {
    if (id >= c.tgtVocabSize) fail(`field "${field}" (${id}) must be below tgt_vocab_size (${c.tgtVocabSize})`);
  }
  // Source padding is found by comparing source ids with pad_id.
  if (c.padId >= c.srcVocabSize) fail(`field "pad_id" (${c.padId}) must be below src_vocab_size (${c.srcVocabSize})`);
}

/** Typed, named reads of config.json fields; each failure names the field and the bad value. */
class Fields {
  constructor(
    private readonly obj: Record<string, unknown>,
    private readonly file: string,
  ) {}

  positiveInt(name: string): number {
    const v = this.get(name);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) this.fail(name, 'a positive integer', v);
    return v;
  }

  nonNegativeInt(name: string): number {
    const v = this.get(name);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) this.fail(name, 'a non-negative integer', v);
    return v;
  }

  positiveFloat(name: string): number {
    const v = this.get(name);
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) this.fail(name, 'a finite number > 0', v);
    return v;
  }

  bool(name: string): boolean {
    const v = this.get(name);
    if (typeof v !== 'boolean') this.fail(name, 'true or false', v);
    return v;
  }

  oneOf<T extends string>(name: string, values: readonly T[]): T {
    const v = this.get(name);
    if (!values.includes(v as T)) this.fail(name, values.map((s) => `"${s}"`).join(' or '), v);
    return v as T;
  }

  private get(name: string): unknown {
    if (!Object.hasOwn(this.obj, name) || this.obj[name] === undefined) {
      throw new WasmformerError('BAD_CONFIG', `${this.file}: missing field "${name}"`);
    }
    return this.obj[name];
  }

  private fail(name: string, want: string, got: unknown): never {
    throw new WasmformerError('BAD_CONFIG', `${this.file}: field "${name}" must be ${want}, got ${describe(got)}`);
  }
}
