// The demo models shipped in the package: models/en-de-messages/ (a Hugging Face Marian folder,
// English to German program messages) and models/numbers/ (the PyTorch tutorial's layout,
// numbers in digits to English words).
import type { ModelFileUrls } from './io/source.js';

/**
 * The English -> German demo as a source for loadModel / loadTranslator /
 * createWorkerTranslator, wherever the package is installed: `loadTranslator(demoModel)`. Each
 * file is named by its own URL, the pattern bundlers (Vite, webpack 5) follow to copy assets.
 */
export const demoModel: ModelFileUrls = {
  files: {
    'config.json': new URL('../models/en-de-messages/config.json', import.meta.url),
    'generation_config.json': new URL('../models/en-de-messages/generation_config.json', import.meta.url),
    'model.safetensors': new URL('../models/en-de-messages/model.safetensors', import.meta.url),
    'source.spm': new URL('../models/en-de-messages/source.spm', import.meta.url),
    'target.spm': new URL('../models/en-de-messages/target.spm', import.meta.url),
    'vocab.json': new URL('../models/en-de-messages/vocab.json', import.meta.url),
    'tokenizer_config.json': new URL('../models/en-de-messages/tokenizer_config.json', import.meta.url),
  },
};

/** The numbers demo (digits to English words, character level) as a source. */
export const numbersModel: ModelFileUrls = {
  files: {
    'config.json': new URL('../models/numbers/config.json', import.meta.url),
    'model.safetensors': new URL('../models/numbers/model.safetensors', import.meta.url),
    'tokenizer.json': new URL('../models/numbers/tokenizer.json', import.meta.url),
  },
};
