// Folders holding PyTorch's own weight files (torch.save) load like their safetensors twins.
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../dist/index.js';
import { rejectionOf } from '../expect-error.js';
import { BUILD } from '../helpers.js';
import { FIXTURES } from './fixtures.js';

const TORCH = fileURLToPath(new URL('../io/fixtures/torch/', import.meta.url));
const DIR = `${FIXTURES}source_padding`;

/** A new folder holding the fixture's config.json and `weights` under `name`. */
function folder(weights: string, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'wasmformer-torch-'));
  copyFileSync(`${DIR}/config.json`, join(dir, 'config.json'));
  copyFileSync(weights, join(dir, name));
  return dir;
}

describe('a torch.save state dict in a model folder', () => {
  it.each(['pytorch_model.bin', 'model.bin', 'model.pt', 'model.pth'])('loads as %s, with the logits of the safetensors file', async (name) => {
    const reference = await loadModel(DIR, { build: BUILD });
    const src = [5, 6, 7, 8];
    const tgt = [reference.config.decoderStartId, 9, 10];
    for (const version of ['1.13', '2.13']) {
      const model = await loadModel(folder(`${TORCH}model-${version}.pt`, name), { build: BUILD });
      expect(model.parameters).toBe(reference.parameters);
      expect(model.forward(src, tgt)).toEqual(reference.forward(src, tgt));
      expect(await model.generate(src, { maxNewTokens: 6 })).toEqual(await reference.generate(src, { maxNewTokens: 6 }));
    }
  });

  it('is read by what it is: a torch.save file given as bytes, or even named model.safetensors', async () => {
    const reference = await loadModel(DIR, { build: BUILD });
    const config = readFileSync(`${DIR}/config.json`, 'utf8');
    const weights = new Uint8Array(readFileSync(`${TORCH}model-2.13.pt`));
    const fromBytes = await loadModel({ config, weights }, { build: BUILD });
    expect(fromBytes.forward([5, 6], [1, 9])).toEqual(reference.forward([5, 6], [1, 9]));
    const misnamed = await loadModel(folder(`${TORCH}model-2.13.pt`, 'model.safetensors'), { build: BUILD });
    expect(misnamed.parameters).toBe(reference.parameters);
  });

  it('refuses the legacy format, naming the file and how to save it again', async () => {
    const dir = folder(`${TORCH}legacy-2.13.pt`, 'pytorch_model.bin');
    const message = await rejectionOf(loadModel(dir, { build: BUILD }), 'UNSUPPORTED');
    expect(message).toMatch(new RegExp(`^${join(dir, 'pytorch_model.bin')}: this is PyTorch's legacy torch.save format .*torch.save\\(torch.load\\(path, weights_only=True\\), new_path\\)`));
  });

  it('refuses a pickle that would run code, naming the global, and runs nothing', async () => {
    const dir = folder(`${TORCH}hostile/os-system.pt`, 'pytorch_model.bin');
    const message = await rejectionOf(loadModel(dir, { build: BUILD }), 'BAD_FILE');
    expect(message).toMatch(/data\.pkl imports (os|posix)\.system, which a state dict never needs: refused/);
  });

  it('prefers model.safetensors when a folder has both', async () => {
    const dir = folder(`${DIR}/model.safetensors`, 'model.safetensors');
    copyFileSync(`${TORCH}legacy-2.13.pt`, join(dir, 'pytorch_model.bin')); // never read
    expect((await loadModel(dir, { build: BUILD })).parameters).toBeGreaterThan(0);
  });
});
