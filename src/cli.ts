import { parseArgs } from 'node:util';
import { envKeys } from './config/env.js';

export interface CliOptions {
  command: 'run' | 'help' | 'version' | 'print-config';
  config?: string;
  inspect: boolean;
}

export const usage = () => `Usage: edgevisor [run] [options]

Commands:
  run                 run the agent (default)
  help                show this text

Options:
  -c, --config FILE   config file (JSON, or YAML by .yaml/.yml); without it the embedded defaults
                      apply: an in-process MQTT broker on 127.0.0.1:1883, the API on 127.0.0.1:8080,
                      state in ./var. EDGEVISOR_CONFIG names the file too.
      --print-config  print the effective config (secrets masked) and exit
      --inspect       development: send the actor tree to the Stately inspector
                      (needs the dev dependency @statelyai/inspect; also EDGEVISOR_INSPECT=1)
  -h, --help          show this text
  -v, --version       print the version

Every config key can be overridden by an environment variable:
${envKeys()
  .map((k) => `  ${k.name.padEnd(44)} ${k.path.join('.')} (${k.type})${k.description ? `: ${k.description}` : ''}`)
  .join('\n')}

Exit codes: 0 after a clean stop (SIGTERM/SIGINT), 1 when the agent could not keep running,
2 for a bad command line or config.`;

/** Parses argv (without node and the script); throws on an unknown option. */
export function parseCli(argv: string[], env: NodeJS.ProcessEnv): CliOptions {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
      'print-config': { type: 'boolean' },
      inspect: { type: 'boolean' },
    },
  });
  const [command = 'run', ...rest] = positionals;
  if (rest.length > 0 || !['run', 'help'].includes(command)) throw new Error(`unknown command: ${positionals.join(' ')}`);
  return {
    command: values.help || command === 'help' ? 'help' : values.version ? 'version' : values['print-config'] ? 'print-config' : 'run',
    config: values.config ?? env.EDGEVISOR_CONFIG,
    inspect: Boolean(values.inspect) || env.EDGEVISOR_INSPECT === '1',
  };
}
