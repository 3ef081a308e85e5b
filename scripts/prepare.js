// `npm run prepare`: builds dist/. npm runs it after `npm ci` here, and when this package is
// installed from git (with its devDependencies installed first) or from a folder (with none of
// them: then it installs them into the folder before building).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function run(args) {
  const result = spawnSync('npm', args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

if (!existsSync(new URL('../node_modules/.bin/asc', import.meta.url))) {
  run(['ci', '--ignore-scripts', '--include=dev', '--no-audit', '--no-fund']);
}
run(['run', 'build', '--silent']);
