// Text in, text out on a Hugging Face Marian folder: its SentencePiece tokenizer and the model
// together, against what transformers 5.18 computed (test/fixtures/shared/marian-tiny).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadTranslator, MarianTokenizer, type Translator } from '../../dist/index.js';
import { rejectionOf } from '../expect-error.js';
import { BUILD } from '../helpers.js';

const DIR = fileURLToPath(new URL('../fixtures/shared/marian-tiny/', import.meta.url));
const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

interface Example {
  src_text: string;
  src_ids: number[];
  max_new_tokens: number;
  greedy: { ids: number[]; text: string }[];
}
const expected = JSON.parse(readFileSync(`${DIR}expected.json`, 'utf8')) as { examples: Example[] };

describe('a Marian folder as a translator', () => {
  let translator: Translator;
  beforeAll(async () => {
    translator = await loadTranslator(DIR, { build: BUILD });
  });

  it('reads the SentencePiece tokenizer of the folder', () => {
    expect(translator.tokenizer).toBeInstanceOf(MarianTokenizer);
    for (const e of expected.examples) expect(translator.tokenizer.encode(e.src_text)).toEqual(e.src_ids);
  });

  it('translates text as transformers does (tokenizer, greedy generate, decode)', async () => {
    for (const e of expected.examples) {
      expect(await translator.translate(e.src_text, { numBeams: 1, maxNewTokens: e.max_new_tokens }), e.src_text).toBe(e.greedy[0].text);
    }
  });

  it('streams pieces that join to the same text', async () => {
    for (const e of expected.examples) {
      let text = '';
      for await (const piece of translator.stream(e.src_text, { maxNewTokens: e.max_new_tokens })) text += piece;
      expect(text).toBe(e.greedy[0].text);
    }
  });

  it('the CLI translates with it', async () => {
    const e = expected.examples[0];
    const args = [CLI, 'translate', '--model', DIR, '--num-beams', '1', '--max-new-tokens', String(e.max_new_tokens), e.src_text];
    const { stdout } = await promisify(execFile)(process.execPath, args);
    expect(stdout).toBe(`${e.greedy[0].text}\n`);
  });

  it('refuses a folder that lacks a tokenizer file, naming it', async () => {
    const config = readFileSync(`${DIR}config.json`, 'utf8');
    const weights = readFileSync(`${DIR}model.safetensors`);
    const message = await rejectionOf(loadTranslator({ config, weights, tokenizerFiles: { 'source.spm': readFileSync(`${DIR}source.spm`) } }, { build: BUILD }), 'BAD_CONFIG');
    expect(message).toBe('tokenizerFiles["target.spm"]: missing (a translator needs the model\'s tokenizer)');
  });

  it('is unusable after dispose, with a clear error', async () => {
    const other = await loadTranslator(DIR, { build: BUILD });
    other.dispose();
    expect(await rejectionOf(other.translate(expected.examples[0].src_text), 'DISPOSED')).toBe('this model was disposed');
  });
});
