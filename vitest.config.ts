import { defineConfig } from 'vitest/config';

// Tests import the built package (dist/), as a user does: `npm test` builds first.
// Kernel and model tests run twice: once with the SIMD128 build, once with relaxed SIMD, which
// Node 20 validates only behind a flag (Node 22+ and current browsers need none).
export default defineConfig({
  test: {
    // The JSON report gives CI its closing "N passed, N failed" line (.ci/run).
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results.json' },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'simd',
          include: ['test/**/*.test.ts'],
          exclude: ['test/browser/**'],
          env: { WASMFORMER_BUILD: 'simd' },
        },
      },
      {
        extends: true,
        test: {
          name: 'relaxed',
          include: ['test/kernels/**/*.test.ts', 'test/model/**/*.test.ts'],
          execArgv: ['--experimental-wasm-relaxed-simd'],
          env: { WASMFORMER_BUILD: 'relaxed' },
        },
      },
      {
        // The example page in Debian's Chromium (/usr/bin/chromium), served by examples/serve.js,
        // and the packed package in a new project. It runs after the others, one file at a time:
        // its measurements of a page's responsiveness mean nothing while other tests take the CPU.
        extends: true,
        test: {
          name: 'browser',
          include: ['test/browser/**/*.test.ts'],
          sequence: { groupOrder: 1 },
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
