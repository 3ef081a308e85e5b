import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadTranslator, WasmformerError, type Translator } from '../../dist/index.js';
import { DEMO, readDemo, type Item } from '../demo-model.js';
import { BUILD } from '../helpers.js';

const read = (file: string) => readDemo(file) as { items: Item[] };

describe('the shipped demo model (numbers to English words)', () => {
  let translator: Translator;
  beforeAll(async () => {
    translator = await loadTranslator(DEMO, { build: BUILD });
  });

  it('decodes the held-out set exactly as PyTorch does, at >= 99% exact match', async () => {
    const { items } = read('heldout.json');
    let correct = 0;
    for (const item of items) {
      expect(translator.tokenizer.encode(item.text)).toEqual(item.src_ids);
      const ids = await translator.model.generate(item.src_ids);
      expect(ids, item.text).toEqual(item.greedy_ids);
      if (translator.tokenizer.decode(ids) === item.expected) correct++;
    }
    console.log(`demo model, held-out exact match in wasmformer (${translator.model.build}): ${correct}/${items.length}`);
    expect(correct / items.length).toBeGreaterThanOrEqual(0.99);
  });

  it('translates text to text, and streams the same text token by token', async () => {
    for (const { text, greedy_text } of read('samples.json').items) {
      expect(await translator.translate(text)).toBe(greedy_text);
      let streamed = '';
      for await (const piece of translator.stream(text)) streamed += piece;
      expect(streamed).toBe(greedy_text);
    }
  });

  it('refuses a character outside the vocabulary by name, and keeps working', async () => {
    await expect(translator.translate('12a4')).rejects.toThrow(/character "a" \(U\+0061\) at position 2/);
    await expect(translator.translate('12a4')).rejects.toBeInstanceOf(WasmformerError);
    expect(await translator.translate('4019')).toBe('four thousand nineteen');
  });

  it('refuses a tokenizer that does not match the model', async () => {
    const config = readFileSync(`${DEMO}config.json`, 'utf8');
    const weights = readFileSync(`${DEMO}model.safetensors`);
    const tokenizer = JSON.parse(readFileSync(`${DEMO}tokenizer.json`, 'utf8')) as { tgt_vocab: string[] };
    const wrong = { ...tokenizer, tgt_vocab: tokenizer.tgt_vocab.slice(0, -1) };
    await expect(loadTranslator({ config, weights, tokenizer: wrong }, { build: BUILD })).rejects.toThrow(
      /tokenizer: "tgt_vocab" \(\d+\) does not match the model's tgt_vocab_size/,
    );
  });
});
