// The package as a user gets it: `npm pack`, installed from the tarball into a new project
// outside the repository, then used as a user would: a Node ESM script, a strict TypeScript
// file against the published types, and a Vite build of a page that translates in Chromium.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Browser } from 'playwright-core';
import { createServer as createViteServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../../examples/serve.js';
import { launchChromium } from './chromium.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'node_modules', '.bin');

/** Runs a command; resolves with its output, or rejects with its output in the message. */
async function run(file: string, args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)(file, args, { cwd, maxBuffer: 1 << 24 });
    return stdout;
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${file} ${args.join(' ')} failed:\n${err.stdout ?? ''}${err.stderr ?? err.message}`);
  }
}

let project = '';

beforeAll(async () => {
  project = mkdtempSync(join(tmpdir(), 'wasmformer-user-'));
  // dist/ is built by `npm test` already: packing must not rebuild it under the other tests' feet.
  await run('npm', ['pack', '--ignore-scripts', '--pack-destination', project], ROOT);
  const tarball = readdirSync(project).find((f) => f.endsWith('.tgz'))!;
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'a-user', private: true, type: 'module' }));
  await run('npm', ['install', '--no-audit', '--no-fund', `./${tarball}`], project);
}, 120_000);

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

describe('the packed package in a new project', () => {
  it('installs nothing but itself (no runtime dependencies)', () => {
    expect(readdirSync(join(project, 'node_modules')).filter((f) => !f.startsWith('.'))).toEqual(['wasmformer']);
  });

  it('a Node ESM script imports it, loads the shipped demo models and translates, here and in a worker', async () => {
    writeFileSync(join(project, 'translate.js'), `
      import { loadTranslator } from 'wasmformer';
      import { demoModel, numbersModel } from 'wasmformer/demo';
      import { createWorkerTranslator } from 'wasmformer/worker';
      const here = await loadTranslator(demoModel);
      console.log(await here.translate('Directory not empty'));
      console.log((await here.translate(['Invalid address', 'Kol (Cameroon)'])).join(' | '));
      const worker = await createWorkerTranslator(numbersModel);
      console.log(await worker.translate('12,345'));
      worker.dispose();
    `);
    expect(await run(process.execPath, ['translate.js'], project)).toBe('Verzeichnis nicht leer\nUngültige Adresse | Kol (Kamerun)\ntwelve thousand three hundred forty-five\n');
    expect(await run(join(project, 'node_modules', '.bin', 'wasmformer'), ['translate', 'Spanish (Dvorak)'], project)).toBe('Spanisch (Dvorak)\n');
  });

  it('a strict TypeScript file type-checks against the published types, which refuse misuse', async () => {
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        strict: true, noEmit: true, target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext',
        lib: ['es2022', 'dom'], types: [], skipLibCheck: false, noUnusedLocals: true,
      },
      files: ['check.ts'],
    }));
    writeFileSync(join(project, 'check.ts'), `
      import { AttentionMaps, loadModel, loadTranslator, WasmformerError, type ErrorCode, type GenerateOptions, type Model } from 'wasmformer';
      import { demoModel } from 'wasmformer/demo';
      import { createWorkerTranslator, type WorkerTranslator } from 'wasmformer/worker';

      export async function use(): Promise<string> {
        const model: Model = await loadModel(demoModel, { build: 'simd', onProgress: (loaded: number, total: number) => void (loaded / total) });
        const options: GenerateOptions = {
          maxNewTokens: 10, onToken: (id: number, index: number) => void (id + index),
          signal: new AbortController().signal, attention: new AttentionMaps(),
        };
        const ids: number[] = await model.generate([7, 3, 4, 2], options);
        const translator = await loadTranslator('https://example.com/models/numbers/');
        const texts: string[] = await translator.translate(['a', 'b'], { numBeams: 4, lengthPenalty: 0.6 });
        const found: { ids: number[]; score: number }[] = await model.search([7, 3, 4, 2], { numBeams: 4, numReturnSequences: 2 });
        const batch: number[][] = await model.generateBatch([[7, 3, 2], [5, 2]], { batchSize: 8 });
        const worker: WorkerTranslator = await createWorkerTranslator(demoModel);
        let text = await translator.translate('4019');
        for await (const piece of worker.stream('12')) text += piece;
        try {
          model.dispose();
        } catch (e) {
          if (e instanceof WasmformerError) {
            const code: ErrorCode = e.code;
            text += code;
          }
        }
        return text + ids.join(',') + texts.join() + found.length + batch.length + String(model.config.maxLen + worker.config.decoderHeads);
      }

      export async function misuse(model: Model): Promise<void> {
        // @ts-expect-error: a text is not token ids
        await model.generate('4019');
        // @ts-expect-error: no such option
        await model.generate([1], { maxNewToken: 3 });
        // @ts-expect-error: the config is read-only
        model.config.maxLen = 1e6;
        // @ts-expect-error: not a build
        await loadModel(demoModel, { build: 'fast' });
        const translator = await loadTranslator(demoModel);
        // @ts-expect-error: a number is not a text
        await translator.translate(4019);
        // @ts-expect-error: a list of texts gives a list of translations
        const one: string = await translator.translate(['4019']);
        void one;
      }
    `);
    await run(join(BIN, 'tsc'), ['-p', project], project);
  });

  describe('a Vite build of a page that imports it', () => {
    let browser: Browser;
    let server: { url: string; close: () => Promise<void> } | null = null;
    afterAll(async () => {
      await browser?.close();
      await server?.close();
    });

    it('builds without configuration, and the built page translates in Chromium (here, with int8 weights, and in a worker)', async () => {
      const page = join(project, 'page');
      rmSync(page, { recursive: true, force: true });
      writeFileSync(join(project, 'index.html'), `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head>
        <body><p id="here"></p><p id="q8"></p><p id="threads"></p><p id="worker"></p><script type="module" src="./main.js"></script></body></html>`);
      writeFileSync(join(project, 'main.js'), `
        import { loadTranslator } from 'wasmformer';
        import { demoModel, numbersModel } from 'wasmformer/demo';
        import { createWorkerTranslator } from 'wasmformer/worker';
        const here = await loadTranslator(demoModel);
        document.querySelector('#here').textContent = await here.translate('Directory not empty');
        const q8 = await loadTranslator(demoModel, { dtype: 'q8' }); // int8 kernels, the relaxed build in Chromium
        document.querySelector('#q8').textContent = q8.model.dtype + ' ' + q8.model.build + ': ' + await q8.translate('Directory not empty');
        const two = await loadTranslator(demoModel, { threads: 2 }); // two threads where the page is cross-origin isolated
        document.querySelector('#threads').textContent = two.model.threads + ' threads: ' + await two.translate('Directory not empty');
        const worker = await createWorkerTranslator(numbersModel);
        document.querySelector('#worker').textContent = await worker.translate('12,345');
      `);
      const log = await run(join(BIN, 'vite'), ['build', '--outDir', page, '--logLevel', 'info'], project);
      expect(log).toMatch(/wasmformer\.simd-[\w-]+\.wasm/); // the kernels were found and copied
      expect(log).toMatch(/wasmformer\.relaxed\.shared-[\w-]+\.wasm/); // the build for threads
      expect(log).toMatch(/helper-[\w-]+\.js/); // the helper threads' worker
      expect(log).toMatch(/model-[\w-]+\.safetensors/); // and the demo model's weights
      server = await startServer({ port: 0, root: page });
      browser = await launchChromium();
      const tab = await browser.newPage();
      const problems: string[] = [];
      tab.on('pageerror', (e) => problems.push(e.message));
      tab.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
      await tab.goto(new URL('/index.html', server.url).href);
      await tab.waitForFunction(() => document.querySelector('#worker')!.textContent !== '', null, { timeout: 30_000 });
      expect(await tab.textContent('#here')).toBe('Verzeichnis nicht leer');
      expect(await tab.textContent('#q8')).toBe('q8 relaxed: Verzeichnis nicht leer');
      expect(await tab.textContent('#threads')).toBe('2 threads: Verzeichnis nicht leer'); // startServer's page is cross-origin isolated
      expect(await tab.textContent('#worker')).toBe('twelve thousand three hundred forty-five');
      expect(problems).toEqual([]);
    });

    it("serves the same page from Vite's dev server, with wasmformer kept out of its dependency optimizer", async () => {
      // The README's one line of configuration: the optimizer's bundles would move the package's
      // files away from the .wasm and model files next to them.
      const dev = await createViteServer({
        root: project, configFile: false, logLevel: 'silent', optimizeDeps: { exclude: ['wasmformer'] },
        server: { port: 0, host: '127.0.0.1' },
      });
      try {
        await dev.listen();
        const tab = await browser.newPage();
        const problems: string[] = [];
        tab.on('pageerror', (e) => problems.push(e.message));
        await tab.goto(dev.resolvedUrls!.local[0]);
        await tab.waitForFunction(() => document.querySelector('#worker')!.textContent !== '', null, { timeout: 30_000 });
        expect(await tab.textContent('#here')).toBe('Verzeichnis nicht leer');
        expect(await tab.textContent('#threads')).toBe('1 threads: Verzeichnis nicht leer'); // Vite's dev server sends no isolation headers
        expect(await tab.textContent('#worker')).toBe('twelve thousand three hundred forty-five');
        expect(problems).toEqual([]);
      } finally {
        await dev.close();
      }
    });
  });
});
