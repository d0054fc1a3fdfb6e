import { parseArgs } from 'node:util';
import { envKeys } from './config/env.js';

export interface PublishOptions {
  topic: string;
  message?: string;
  file?: string;
  qos: 0 | 1;
  retain: boolean;
}

export interface CliOptions {
  command: 'run' | 'help' | 'version' | 'print-config' | 'publish';
  config?: string;
  inspect: boolean;
  publish?: PublishOptions;
}

export const usage = () => `Usage: edgevisor [run] [options]

Commands:
  run                 run the agent (default)
  publish             send one message through the running agent's durable outbox:
                        -t, --topic TOPIC  (required)
                        -m, --message TEXT | -f, --file PATH ("-" for stdin)
                        -q, --qos 0|1 (default 1)   --retain
                      the agent is found at http.host:http.port of the same config
  help                show this text

Options:
  -c, --config FILE   config file (JSON, or YAML by .yaml/.yml); without it the embedded defaults
                      apply: an in-process MQTT broker on 127.0.0.1:1883, the API on 127.0.0.1:8080,
                      state in ./var. EDGEVISOR_CONFIG names the file too.
      --print-config  print the effective config (secrets masked) and exit
      --inspect       development: send the actor tree to the Stately inspector
                      (needs the dev dependency @statelyai/inspect; also EDGEVISOR_INSPECT=1);
                      the relay listens on 127.0.0.1:8081 (EDGEVISOR_INSPECT_HOST, _PORT)
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
      topic: { type: 'string', short: 't' },
      message: { type: 'string', short: 'm' },
      file: { type: 'string', short: 'f' },
      qos: { type: 'string', short: 'q', default: '1' },
      retain: { type: 'boolean' },
    },
  });
  const [command = 'run', ...rest] = positionals;
  if (rest.length > 0 || !['run', 'help', 'publish'].includes(command)) throw new Error(`unknown command: ${positionals.join(' ')}`);
  const common = { config: values.config ?? env.EDGEVISOR_CONFIG, inspect: Boolean(values.inspect) || env.EDGEVISOR_INSPECT === '1' };
  if (values.help || command === 'help') return { command: 'help', ...common };
  if (values.version) return { command: 'version', ...common };
  if (values['print-config']) return { command: 'print-config', ...common };
  if (command !== 'publish') return { command: 'run', ...common };
  if (!values.topic) throw new Error('publish needs --topic');
  if ((values.message === undefined) === (values.file === undefined)) throw new Error('publish needs one of --message or --file');
  if (values.qos !== '0' && values.qos !== '1') throw new Error(`--qos must be 0 or 1, not ${values.qos}`);
  return {
    command: 'publish',
    ...common,
    publish: { topic: values.topic, message: values.message, file: values.file, qos: Number(values.qos) as 0 | 1, retain: Boolean(values.retain) },
  };
}
