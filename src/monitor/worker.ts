import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/** `<name>.js` beside this module, or from source (the tests) the .ts through tsx, for a child process. */
export function scriptBeside(name: string): { script: string; execArgv: string[] } {
  const js = new URL(`./${name}.js`, import.meta.url);
  if (existsSync(fileURLToPath(js))) return { script: fileURLToPath(js), execArgv: [] };
  return { script: fileURLToPath(new URL(`./${name}.ts`, import.meta.url)), execArgv: ['--import', 'tsx'] };
}

/**
 * A worker thread running `<name>.js` from beside this module: in the bundle the workers are
 * entry points of their own (scripts/bundle.mjs), and from source (the tests) the .ts file is
 * loaded through tsx.
 */
export function startWorker(name: string, workerData: unknown): Worker {
  const js = new URL(`./${name}.js`, import.meta.url);
  if (existsSync(fileURLToPath(js))) return new Worker(js, { workerData });
  const ts = new URL(`./${name}.ts`, import.meta.url).href;
  const boot = `import('tsx/esm/api').then(({ register }) => (register(), import(${JSON.stringify(ts)})))`;
  return new Worker(boot, { eval: true, workerData });
}
