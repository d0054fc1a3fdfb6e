// npm start's pre-step: build only when a source is newer than the bundle (a build takes ~7 s,
// a start ~0.6 s). `npm run build` always builds.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const bundle = join(root, 'dist/bundle/main.js');
const sources = ['src', 'machines', 'profiles', 'web', 'package.json', 'package-lock.json', 'tsconfig.json', 'scripts/bundle.mjs'];

function newestMtime(path) {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return readdirSync(path).reduce((newest, name) => Math.max(newest, newestMtime(join(path, name))), stat.mtimeMs);
}

const built = existsSync(bundle) ? statSync(bundle).mtimeMs : 0;
const changed = sources.some((source) => newestMtime(join(root, source)) > built);
if (changed) execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
