import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTranslator } from '../../dist/index.js';
import { readModel, readModelConfig, readModelWeights, type ModelSource, type ReadOptions } from '../../dist/io/index.js';
import { rejectionOf } from '../expect-error.js';
import { tinyConfig, tinyTensors } from './tiny-model.js';
import { writeSafetensors } from './write-safetensors.js';

const CONFIG_TEXT = JSON.stringify(tinyConfig());
// About 1.3 MB, so that it streams in many chunks.
const WEIGHTS = writeSafetensors({
  ...tinyTensors(tinyConfig(), { generatorBias: true }),
  'extra.buffer': { shape: [320_000], dtype: 'F32' },
});

/** Byte equality without a deep-equality walk, which is slow on a megabyte. */
const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0;

/** Both files as readModel reads them: config.json, then model.safetensors. */
async function readModelFiles(source: ModelSource, options: ReadOptions = {}) {
  const config = await readModelConfig(source);
  const weights = await readModelWeights(source, options);
  return { config: config.data, configFile: config.file, weights: weights.data, weightsFile: weights.file };
}

type Progress = [number, number][];
const recorder = (): { calls: Progress; onProgress: (loaded: number, total: number) => void } => {
  const calls: Progress = [];
  return { calls, onProgress: (loaded, total) => calls.push([loaded, total]) };
};

describe('readModelFiles from a folder', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'wasmformer-io-'));
    writeFileSync(join(dir, 'config.json'), CONFIG_TEXT);
    writeFileSync(join(dir, 'model.safetensors'), WEIGHTS);
  });
  afterAll(() => rmSync(dir, { recursive: true }));

  it('reads both files from a path, naming them by path', async () => {
    const { calls, onProgress } = recorder();
    const files = await readModelFiles(dir, { onProgress });
    expect(files.config).toBe(CONFIG_TEXT);
    expect(files.configFile).toBe(join(dir, 'config.json'));
    expect(files.weightsFile).toBe(join(dir, 'model.safetensors'));
    expect(same(files.weights, WEIGHTS)).toBe(true);
    expect(Object.getPrototypeOf(files.weights)).toBe(Uint8Array.prototype); // not a Buffer
    expect(calls).toEqual([[WEIGHTS.length, WEIGHTS.length]]);
  });

  it('reads from a file: URL, with or without a trailing slash', async () => {
    for (const url of [pathToFileURL(dir), pathToFileURL(`${dir}/`), pathToFileURL(dir).href]) {
      const files = await readModelFiles(url);
      expect(same(files.weights, WEIGHTS)).toBe(true);
      expect(files.weightsFile).toBe(`${pathToFileURL(dir).href}/model.safetensors`);
    }
  });

  it('names the path of a missing file', async () => {
    const missing = join(dir, 'nope');
    expect(await rejectionOf(readModelFiles(missing), 'BAD_CONFIG')).toBe(`${join(missing, 'config.json')}: file not found`);
    const half = mkdtempSync(join(tmpdir(), 'wasmformer-io-'));
    writeFileSync(join(half, 'config.json'), CONFIG_TEXT);
    expect(await rejectionOf(readModelFiles(half), 'BAD_FILE')).toBe(
      `${join(half, 'model.safetensors')}: file not found (nor pytorch_model.bin, model.bin, model.pt, model.pth)`);
    rmSync(half, { recursive: true });
  });

  it('reads each file from its own path or URL ({ files })', async () => {
    const files = {
      'config.json': join(dir, 'config.json'),
      'model.safetensors': pathToFileURL(join(dir, 'model.safetensors')),
    };
    const read = await readModelFiles({ files });
    expect(read.config).toBe(CONFIG_TEXT);
    expect(same(read.weights, WEIGHTS)).toBe(true);
    expect(read.weightsFile).toBe(pathToFileURL(join(dir, 'model.safetensors')).href);
    const message = await rejectionOf(readModelWeights({ files: { 'config.json': files['config.json'] } }), 'BAD_ARGUMENT');
    expect(message).toBe('source.files has no model.safetensors (nor pytorch_model.bin, model.bin, model.pt, model.pth)');
    const notUrl = await rejectionOf(readModelWeights({ files: { 'model.safetensors': 7 } } as never), 'BAD_ARGUMENT');
    expect(notUrl).toBe('source.files["model.safetensors"] must be a path or a URL, got 7');
  });

  it('says a folder is not a file', async () => {
    expect(await rejectionOf(readModelWeights({ files: { 'model.safetensors': dir } }), 'BAD_FILE')).toBe(`${dir}: is a folder, not a file`);
  });

  it('reads and checks a whole model (readModel)', async () => {
    const model = await readModel(dir);
    expect(model.config.dModel).toBe(6);
    const present = (slot: 'src.positions' | 'generator.weight' | 'generator.bias') => model.resolved.get(slot)!.entry !== null;
    expect([present('src.positions'), present('generator.weight'), present('generator.bias')]).toEqual([false, false, true]);
    expect(model.read('generator.bias')).toEqual(Float32Array.from(tinyTensors(tinyConfig(), { generatorBias: true })['generator.bias'].data as number[]));
    expect(model.read('generator.weight')).toEqual(model.read('tgt.embedding')); // absent: tied to the target embedding
    expect(model.read('src.positions')).toBeNull(); // absent: the sinusoid is computed
    const message = await rejectionOf(Promise.resolve().then(() => model.read('decoder.7.fc1.weight')), 'BAD_TENSOR');
    expect(message).toBe(`${join(dir, 'model.safetensors')}: the model has no decoder.7.fc1.weight`);
  });
});

describe('readModelFiles from memory', () => {
  it('takes a config object or text and weights as Uint8Array or ArrayBuffer', async () => {
    const config = tinyConfig();
    const { calls, onProgress } = recorder();
    const files = await readModelFiles({ config, weights: WEIGHTS }, { onProgress });
    expect(files.weights).toBe(WEIGHTS);
    expect(files).toMatchObject({ config, configFile: 'config', weightsFile: 'weights' });
    expect(calls).toEqual([[WEIGHTS.length, WEIGHTS.length]]);
    const copy = WEIGHTS.slice().buffer;
    expect(same((await readModelFiles({ config: CONFIG_TEXT, weights: copy })).weights, WEIGHTS)).toBe(true);
  });

  it('names "config" and "weights" in errors', async () => {
    const broken = await rejectionOf(readModel({ config: '{', weights: WEIGHTS }), 'BAD_CONFIG');
    expect(broken).toMatch(/^config: not valid JSON/);
    expect(await rejectionOf(readModel({ config: CONFIG_TEXT, weights: WEIGHTS.subarray(0, 100) }), 'BAD_FILE')).toMatch(/^weights: /);
  });

  it('refuses anything else as a source', async () => {
    for (const source of [null, 3, '', {}, { config: {} }, { files: null }]) {
      const message = await rejectionOf(readModelFiles(source as never), 'BAD_ARGUMENT');
      expect(message).toMatch(/^a model source is a folder path, a URL, \{ files: \{ name: URL \} \}, or \{ config/);
    }
    for (const weights of [[1, 2], new Float32Array(2)]) {
      const message = await rejectionOf(readModelFiles({ config: {}, weights } as never), 'BAD_ARGUMENT');
      expect(message).toMatch(/^source\.weights must be an ArrayBuffer or a Uint8Array, got /);
    }
  });
});

describe('readModelFiles from a URL', () => {
  let server: Server;
  let base = '';
  const served = new Map<string, { body: Uint8Array; length: boolean }>([
    ['/m/config.json', { body: new TextEncoder().encode(CONFIG_TEXT), length: true }],
    ['/m/model.safetensors', { body: WEIGHTS, length: true }],
    ['/chunked/config.json', { body: new TextEncoder().encode(CONFIG_TEXT), length: false }],
    ['/chunked/model.safetensors', { body: WEIGHTS, length: false }],
    ['/half/config.json', { body: new TextEncoder().encode(CONFIG_TEXT), length: true }],
  ]);

  beforeAll(async () => {
    server = createServer((request, response) => {
      const file = served.get(new URL(request.url ?? '/', 'http://x').pathname);
      if (file === undefined) {
        response.writeHead(404).end('not here');
        return;
      }
      // Without Content-Length, Node sends the body chunked: the size is unknown until the end.
      response.writeHead(200, file.length ? { 'Content-Length': String(file.body.length) } : {});
      let at = 0;
      const next = (): void => { // 64 KiB at a time, a macrotask apart, so progress has many steps
        if (at >= file.body.length) {
          response.end();
          return;
        }
        response.write(file.body.subarray(at, at + 65536));
        at += 65536;
        setImmediate(next);
      };
      next();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /**
   * Loaded bytes increase chunk by chunk against a constant total, and the last call is
   * (size, size): when the size was unknown, it repeats the loaded count of the last chunk.
   */
  function expectProgress(calls: Progress, total: number): void {
    const chunks = total === 0 ? calls.slice(0, -1) : calls;
    expect(chunks.length).toBeGreaterThan(3);
    for (let i = 1; i < chunks.length; i++) expect(chunks[i][0]).toBeGreaterThan(chunks[i - 1][0]);
    for (const [, t] of calls.slice(0, -1)) expect(t).toBe(total);
    expect(calls.at(-1)).toEqual([WEIGHTS.length, WEIGHTS.length]);
  }

  it('fetches both files, reporting progress against Content-Length', async () => {
    const { calls, onProgress } = recorder();
    const files = await readModelFiles(`${base}/m`, { onProgress });
    expect(files.config).toBe(CONFIG_TEXT);
    expect(files.configFile).toBe(`${base}/m/config.json`);
    expect(files.weightsFile).toBe(`${base}/m/model.safetensors`);
    expect(same(files.weights, WEIGHTS)).toBe(true);
    expectProgress(calls, WEIGHTS.length);
  });

  it('reports a total of 0 while the size is unknown', async () => {
    const { calls, onProgress } = recorder();
    const files = await readModelFiles(new URL(`${base}/chunked/`), { onProgress });
    expect(same(files.weights, WEIGHTS)).toBe(true);
    expectProgress(calls, 0);
  });

  it('reads and checks a whole model (readModel)', async () => {
    const model = await readModel(`${base}/m/`);
    expect(model.config.tgtVocabSize).toBe(9);
    expect(model.tensors.get('extra.buffer')?.shape).toEqual([320_000]);
  });

  it('names the URL of a missing file or an unreachable server', async () => {
    expect(await rejectionOf(readModelFiles(`${base}/nothing`), 'BAD_CONFIG')).toBe(`${base}/nothing/config.json: HTTP 404 Not Found`);
    expect(await rejectionOf(readModelFiles(`${base}/half`), 'BAD_FILE')).toBe(
      `${base}/half/model.safetensors: file not found (nor pytorch_model.bin, model.bin, model.pt, model.pth)`);
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const message = await rejectionOf(readModelFiles(`http://127.0.0.1:${port}/m`), 'BAD_CONFIG');
    expect(message).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${port}/m/config\\.json: fetch failed \\(.*ECONNREFUSED`));
  });

  it('stops the download when the progress callback throws, with that error', async () => {
    const stop = new Error('stop');
    const p = readModelFiles(`${base}/m`, { onProgress: () => { throw stop; } });
    await expect(p).rejects.toBe(stop);
  });
});

describe('a download is checked by its header before its data arrives', () => {
  const SIZE = 600_000_000; // what the server announces; it never has to send it
  let server: Server;
  let base = '';
  let sent = 0; // bytes of model.safetensors written before the client went away

  /** Header bytes for a model of the wrong shape: valid safetensors, refused by checkWeights. */
  function wrongShapeHeader(): Uint8Array {
    const tensors = tinyTensors(tinyConfig({ dim_feedforward: 4 }), { generatorBias: true });
    // The tensors, then an extra one that makes the file SIZE bytes; the header is padded to a
    // fixed length, so the extra tensor's size does not change it.
    const file = writeSafetensors({ ...tensors, 'extra.buffer': { shape: [0], dtype: 'U8' } });
    const headerLength = Number(new DataView(file.buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + headerLength)));
    const data = file.length - 8 - headerLength;
    const json = JSON.stringify(header).length + 64;
    const extra = SIZE - 8 - json - data;
    header['extra.buffer'] = { dtype: 'U8', shape: [extra], data_offsets: [data, data + extra] };
    const out = new Uint8Array(8 + json);
    new DataView(out.buffer).setBigUint64(0, BigInt(json), true);
    out.set(new TextEncoder().encode(JSON.stringify(header).padEnd(json, ' ')), 8);
    return out;
  }

  const starts: Record<string, Uint8Array> = {
    html: new TextEncoder().encode('<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>'),
    zip: Uint8Array.from([0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 0, 0, 0]),
    shape: new Uint8Array(0),
  };

  beforeAll(async () => {
    starts.shape = wrongShapeHeader();
    server = createServer((request, response) => {
      const [, kind, file] = new URL(request.url ?? '/', 'http://x').pathname.split('/');
      if (file === 'config.json') {
        response.writeHead(200).end(CONFIG_TEXT);
        return;
      }
      response.writeHead(200, { 'Content-Length': String(SIZE) });
      response.write(starts[kind]);
      sent = starts[kind].length;
      const zeros = new Uint8Array(65536);
      const next = (): void => { // the rest, slowly, until the client goes away
        if (response.destroyed || sent >= SIZE) return;
        response.write(zeros);
        sent += zeros.length;
        setTimeout(next, 1);
      };
      response.on('close', () => response.destroy());
      next();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  }));

  it.each([
    ['an HTML page', 'html', 'BAD_FILE', /model\.safetensors: header length \d+ is over the 100000000-byte limit: this is an HTML page \(a wrong URL, or a server's error page\?\), not safetensors$/],
    ['a zip archive that torch.save did not write', 'zip', 'BAD_FILE', /model\.safetensors: a zip archive whose first entry is not <archive>\/data\.pkl: not one that torch\.save wrote$/],
    ['tensors of the wrong shape', 'shape', 'BAD_TENSOR', /model\.safetensors: tensor "transformer\.encoder\.layers\.0\.linear1\.weight" has shape \[4, 6\], expected \[5, 6\]$/],
  ])('refuses %s after its first bytes, not after 600 MB', async (_, kind, code, message) => {
    expect(await rejectionOf(readModel(`${base}/${kind}/`), code)).toMatch(message);
    expect(sent).toBeLessThan(8 << 20);
  });
});

describe('loadTranslator from a URL', () => {
  const folder = new URL('./fixtures/tutorial_export/', import.meta.url);
  const requests = new Map<string, number>();
  let server: Server;
  let base: string;

  beforeAll(async () => {
    server = createServer((request, response) => {
      const name = new URL(request.url ?? '/', 'http://x').pathname.slice(1);
      requests.set(name, (requests.get(name) ?? 0) + 1);
      try {
        response.writeHead(200).end(readFileSync(new URL(name, folder)));
      } catch {
        response.writeHead(404).end('not here');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('fetches each file once, config.json included', async () => {
    const translator = await loadTranslator(base);
    const local = await loadTranslator(fileURLToPath(folder));
    expect(await translator.translate('abc', { maxNewTokens: 4 })).toBe(await local.translate('abc', { maxNewTokens: 4 }));
    translator.dispose();
    local.dispose();
    expect(requests.get('config.json')).toBe(1);
    expect(requests.get('model.safetensors')).toBe(1);
    expect(requests.get('tokenizer.json')).toBe(1);
  });
});
