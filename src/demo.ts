// The demo model shipped in the package (models/numbers/: numbers in digits to English words).
import type { ModelFileUrls } from './io/source.js';

/**
 * The demo model as a source for loadModel / loadTranslator, wherever the package is installed:
 * `loadTranslator(demoModel)`. Each file is named by its own URL, the pattern bundlers (Vite,
 * webpack 5) follow to copy assets into a build.
 */
export const demoModel: ModelFileUrls = {
  files: {
    'config.json': new URL('../models/numbers/config.json', import.meta.url),
    'model.safetensors': new URL('../models/numbers/model.safetensors', import.meta.url),
    'tokenizer.json': new URL('../models/numbers/tokenizer.json', import.meta.url),
  },
};
