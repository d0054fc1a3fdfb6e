// npm run build:native: compiles native/spawn.c (posix_spawn for the jobs runner, opt-in with
// config jobs.launcher: "posix_spawn") into dist/native/spawn.node with the system's C compiler
// and Node's own headers: one C file needs neither node-gyp nor Python. Never part of npm
// install, npm run build or npm test: a box without a compiler runs jobs with child_process.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

const out = 'dist/native/spawn.node';
// Node's headers: beside an installed node (include/node), or where npm is told to build against
const candidates = [
  join(dirname(process.execPath), '..', 'include', 'node'),
  process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
  '/usr/include/node',
  '/usr/local/include/node',
];
const headers = candidates.find((dir) => dir && existsSync(join(dir, 'node_api.h')));
const compiler = process.env.CC ?? 'cc';
try {
  if (!headers) throw new Error(`no node_api.h in ${candidates.filter(Boolean).join(', ')} (Debian: libnode-dev)`);
  mkdirSync(dirname(out), { recursive: true });
  execFileSync(compiler, ['-O2', '-shared', '-fPIC', '-Wall', '-Werror', '-std=gnu11', `-I${headers}`, '-o', out, 'native/spawn.c'], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  console.log(`build:native: ${out} built`);
} catch (error) {
  console.error(`build:native: ${out} not built: ${error.message.split('\n')[0]}`);
  process.exit(1);
}
