// wasmformer: the Transformer of "Attention Is All You Need" on WebAssembly SIMD.
export { WasmformerError, type ErrorCode } from './errors.js';
export type { FamilyName, GenerationDefaults, ModelConfig } from './families/index.js';
export type { ModelSource } from './io/index.js';
export { loadModel, type LoadOptions } from './model/load.js';
export { AttentionMaps } from './model/attention-maps.js';
export type { GenerateOptions, Hypothesis } from './generate/index.js';
export { Model } from './model/model.js';
export { supportedBuilds, type Build } from './runtime/index.js';
export { CharTokenizer, MarianTokenizer, SentencePieceProcessor, type Tokenizer } from './tokenizers/index.js';
export { loadTranslator, TextStream, Translator, type TranslatorSource } from './translator.js';
