#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseCli, usage, type CliOptions } from './cli.js';
import { loadConfig } from './config/load.js';
import { redactSecrets } from './config/redact.js';
import { createLogger, forConcern } from './log.js';

/** Entry point: parse, load the config, run the tree, map signals and outcomes to exit codes. */
async function main(argv: string[]): Promise<number> {
  let cli: CliOptions;
  try {
    cli = parseCli(argv, process.env);
  } catch (error) {
    return fail(`edgevisor: ${(error as Error).message} (see --help)`, 2);
  }
  if (cli.command === 'help') return (void console.log(usage()), 0);
  if (cli.command === 'version') return (void console.log(version()), 0);

  const loaded = loadConfig({ file: cli.config, env: process.env });
  if (!loaded.ok) return fail(`edgevisor: ${loaded.error}`, 2);
  if (cli.command === 'print-config') return (void console.log(JSON.stringify(redactSecrets(loaded.config), null, 2)), 0);
  if (cli.command === 'publish') {
    const { publishThroughAgent } = await import('./publish-command.js');
    try {
      console.log(await publishThroughAgent(loaded.config, cli.publish!));
      return 0;
    } catch (error) {
      return fail(`edgevisor: ${(error as Error).message}`, 1);
    }
  }

  // A configured launcher that cannot load is refused here, as a bad config is: never a silent fallback.
  if (loaded.config.jobs.enabled && loaded.config.jobs.launcher !== 'child_process') {
    const { launcherFor } = await import('./jobs/launch.js');
    try {
      launcherFor(loaded.config.jobs.launcher);
    } catch (error) {
      return fail(`edgevisor: ${(error as Error).message}`, 2);
    }
  }

  // Loaded only now, so a bad config is refused without loading the agent's dependencies.
  const { startRuntime } = await import('./runtime.js');
  const { startInspector, inspectorOptions } = await import('./inspector.js');
  const rootLog = createLogger(loaded.config.log);
  const log = forConcern(rootLog, 'agent');
  const inspector = cli.inspect ? await startInspector(log, inspectorOptions(process.env)) : undefined;
  const runtime = startRuntime(loaded.config, rootLog, { inspect: inspector?.inspect });
  const { startSystemdNotify } = await import('./systemd-notify.js');
  const systemd = startSystemdNotify(process.env, runtime.actor, forConcern(rootLog, 'systemd'));

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      log.warn({ signal }, 'second signal: exiting at once');
      process.exit(1);
    }
    log.info({ signal }, 'stopping');
    systemd?.stop();
    runtime.stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  const { reason } = await runtime.done;
  inspector?.stop();
  if (reason) {
    log.fatal({ reason }, 'stopped');
    return fail(`edgevisor: ${reason}`, 1);
  }
  log.info('stopped');
  return 0;
}

function fail(line: string, code: number): number {
  process.stderr.write(`${line}\n`);
  return code;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Anything still holding the loop open (a half-closed socket) must not keep a stopped agent alive.
    setTimeout(() => process.exit(code), 200).unref();
  },
  (error) => {
    process.stderr.write(`edgevisor: unexpected error: ${String(error)}\n`);
    process.exit(1);
  },
);
