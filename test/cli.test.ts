import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { FIXTURES, type Expected } from './model/fixtures.js';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const MODEL = `${FIXTURES}post_ln_relu_stored_pos`;
const EXPECTED = JSON.parse(readFileSync(`${MODEL}/expected.json`, 'utf8')) as Expected;

/** Runs the CLI; resolves with its exit code and output (a failing command does not throw). */
async function wasmformer(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('wasmformer CLI', () => {
  it('generate --json prints the greedy ids PyTorch produced, and a speed', async () => {
    const { src, max_new_tokens, ids } = EXPECTED.greedy[0];
    const { code, stdout } = await wasmformer('generate', '--model', MODEL, '--src-ids', src.join(','), '--max-new-tokens', String(max_new_tokens), '--json');
    expect(code).toBe(0);
    const result = JSON.parse(stdout) as { ids: number[]; tokens_per_second: number };
    expect(result.ids).toEqual(ids);
    expect(result.tokens_per_second).toBeGreaterThan(0);
  });

  it('info prints the config, the parameter count and the memory', async () => {
    const { code, stdout } = await wasmformer('info', '--model', MODEL, '--json');
    expect(code).toBe(0);
    const info = JSON.parse(stdout) as { config: { dModel: number }; parameters: number; memory_bytes: number };
    const config = JSON.parse(readFileSync(`${MODEL}/config.json`, 'utf8')) as { d_model: number };
    expect(info.config.dModel).toBe(config.d_model);
    expect(info.parameters).toBeGreaterThan(0);
    expect(info.memory_bytes).toBeGreaterThan(0);
  });

  it('fails with one line naming the problem and status 1', async () => {
    const missing = await wasmformer('info', '--model', '/nonexistent');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^wasmformer: \/nonexistent\/config\.json: file not found\n$/);
    const badIds = await wasmformer('generate', '--model', MODEL, '--src-ids', '5,x');
    expect(badIds.code).toBe(1);
    expect(badIds.stderr).toMatch(/--src-ids: expected comma-separated integers/);
    const outside = await wasmformer('generate', '--model', MODEL, '--src-ids', '5,999');
    expect(outside.stderr).toMatch(/source: id 999 at position 1 is outside the vocabulary/);
  });

  it('prints its usage for an unknown command, with status 2', async () => {
    const { code, stdout } = await wasmformer('frobnicate');
    expect(code).toBe(2);
    expect(stdout).toMatch(/^usage:/);
  });
});
