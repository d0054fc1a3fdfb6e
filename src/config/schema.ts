import { isIP } from 'node:net';
import { z } from 'zod';
import { AlertRulesSchema, AlertSettingsShape } from './alerts.js';

/** One schema for the config file, the environment overrides, --help and
 * deploy/config.schema.json. Every object is strict: an unknown key is an error. */

const seconds = (description: string, value: number) => z.number().positive().default(value).describe(description);
const filePath = (description: string) => z.string().min(1).optional().describe(description);
const port = (description: string, value: number) => z.number().int().min(0).max(65535).default(value).describe(description);

const mqttUrl = z.string().refine((url) => url === 'embedded' || /^(mqtts?|wss?):\/\/[^/\s]+/.test(url), {
  message: 'must be "embedded" or an mqtt://, mqtts://, ws:// or wss:// URL',
});

/** Bounds of the embedded broker: each input a client controls has one (docs/security.md). */
const EmbeddedLimits = z
  .strictObject({
    maxPacketBytes: z
      .number()
      .int()
      .min(1024)
      .max(268_435_455)
      .default(256 * 1024)
      .describe('largest MQTT packet a client may send; a bigger one closes its connection before it is read'),
    maxConnections: z.number().int().min(2).default(100).describe("client connections at once, the agent's own included (one is always kept for it)"),
    maxRetainedMessages: z
      .number()
      .int()
      .min(1)
      .default(1000)
      .describe('retained messages the broker keeps at most; a client publishing past it is disconnected'),
    maxRetainedBytes: z
      .number()
      .int()
      .min(1024)
      .default(4 * 1024 * 1024)
      .describe('topic and payload bytes of retained messages at most'),
    maxInflight: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .default(100)
      .describe('QoS 1/2 messages per client in flight at once: inbound QoS 2 awaiting PUBREL, outbound awaiting acknowledgement'),
    connectTimeoutSeconds: seconds('a connection that sends no CONNECT in this time is closed', 10),
  })
  .prefault({});

const Mqtt = z
  .strictObject({
    url: mqttUrl.default('embedded').describe('"embedded" starts an in-process broker on embeddedHost:embeddedPort; otherwise mqtt[s]://host:port'),
    embeddedHost: z.string().default('127.0.0.1').describe('address the embedded broker listens on'),
    embeddedPort: port('port the embedded broker listens on', 1883),
    embeddedPasswordFile: filePath('users of the embedded broker, in mosquitto_passwd format (made with `mosquitto_passwd -c FILE USER`); read at start'),
    embeddedAllowAnonymous: z
      .boolean()
      .default(false)
      .describe("let clients without a user name connect to the embedded broker (never to the agent's topics or client id)"),
    embeddedJobsServiceUser: z
      .string()
      .min(1)
      .optional()
      .describe('a user of embeddedPasswordFile that may play the AWS IoT Jobs service for this thing ($aws/things/<thing>/jobs/#)'),
    embeddedTls: z
      .strictObject({
        cert: z.string().min(1).describe('server certificate (PEM) of the embedded broker'),
        key: z.string().min(1).describe('its private key (PEM)'),
        ca: filePath("CA (PEM) that signs cert, for the agent's own connection; defaults to cert itself (self-signed)"),
      })
      .optional()
      .describe('TLS for the embedded broker; required when embeddedHost is not a loopback address'),
    embeddedLimits: EmbeddedLimits,
    clientId: z.string().min(1).max(128).optional().describe('MQTT client id; defaults to thingName (the AWS IoT convention)'),
    username: z.string().optional().describe('MQTT user name'),
    password: z.string().optional().describe('MQTT password'),
    tls: z
      .strictObject({
        ca: filePath('CA certificate (PEM) that signs the broker certificate, e.g. AmazonRootCA1.pem'),
        cert: filePath('client certificate (PEM), for mutual TLS as AWS IoT Core uses it'),
        key: filePath('client private key (PEM)'),
        rejectUnauthorized: z.boolean().default(true).describe('verify the broker certificate'),
      })
      .default({ rejectUnauthorized: true })
      .describe('TLS file paths for mqtts://'),
    keepaliveSeconds: z.number().int().min(0).max(65535).default(30).describe('MQTT keepalive'),
    connectTimeoutSeconds: seconds('give up on a connection attempt after this long', 10),
    reconnectMinSeconds: seconds('first reconnect delay; doubles per failed attempt', 1),
    reconnectMaxSeconds: seconds('ceiling of the reconnect delay', 60),
  })
  .refine((m) => Boolean(m.tls.cert) === Boolean(m.tls.key), { message: 'tls.cert and tls.key go together', path: ['tls'] })
  .refine(
    (m) =>
      m.url !== 'embedded' || isLoopback(m.embeddedHost) || (m.embeddedTls !== undefined && m.embeddedPasswordFile !== undefined && !m.embeddedAllowAnonymous),
    {
      message: 'a non-loopback embeddedHost needs embeddedTls, an embeddedPasswordFile and embeddedAllowAnonymous off',
      path: ['embeddedHost'],
    },
  )
  .refine((m) => m.embeddedJobsServiceUser === undefined || m.embeddedPasswordFile !== undefined, {
    message: 'embeddedJobsServiceUser names a user of embeddedPasswordFile, which is not set',
    path: ['embeddedJobsServiceUser'],
  })
  .prefault({});

const Http = z
  .strictObject({
    host: z.string().default('127.0.0.1').describe('address of the API, WebSocket, dashboard and firmware listener'),
    port: port('port of that listener', 8080),
    token: z.string().min(16).optional().describe('bearer token; required when host is not a loopback address'),
    allowedOrigins: z
      .array(z.string().regex(/^https?:\/\/[^/\s]+$/, 'must be an origin: http(s)://host[:port], no path'))
      .default([])
      .describe('browser origins besides the agent\'s own that may send mutating requests and open /ws (e.g. "https://ops.example.com")'),
    allowedHosts: z
      .array(z.string().min(1))
      .default([])
      .describe(
        'Host header names besides loopback, http.host, the hostname and the interface addresses that the API, /ws and the dashboard answer (DNS-rebinding guard)',
      ),
    maxBodyBytes: z
      .number()
      .int()
      .min(1024)
      .default(64 * 1024)
      .describe('largest request body of POST /webhooks/harbor and the JSON API routes (publish has outbox.maxPayloadBytes); larger ones get 413'),
    wsMaxPayloadBytes: z
      .number()
      .int()
      .min(1024)
      .default(64 * 1024)
      .describe('largest WebSocket frame a client may send; larger ones close the socket (1009)'),
    wsRequestsPerSecond: z.number().positive().default(10).describe('requests a WebSocket client may send per second on average'),
    wsRequestBurst: z
      .number()
      .int()
      .min(1)
      .default(20)
      .describe(
        'requests a WebSocket client may send at once; beyond it requests are refused, and more than that many refused in a row close the socket (1008)',
      ),
    wsMaxClients: z.number().int().min(1).default(100).describe('WebSocket clients at once; more are refused with 503'),
  })
  .refine((h) => h.token !== undefined || isLoopback(h.host), {
    message: 'a token (at least 16 characters) is required when host is not a loopback address',
    path: ['token'],
  })
  .prefault({});

const Jobs = z
  .strictObject({
    enabled: z.boolean().default(false).describe('take AWS IoT Jobs for this thing'),
    allowlist: z.array(z.string().min(1)).default([]).describe('executables (exact paths) or directories ending in "/" that jobs may run'),
    handlerDir: z.string().optional().describe('where runHandler looks up handlers'),
    defaultTimeoutSeconds: z.number().int().min(1).max(86_400).default(600).describe('step timeout in seconds when a job document names none'),
    answerTimeoutSeconds: seconds('how long to wait for the service to answer a request before asking again', 10),
    directStatus: z.boolean().default(false).describe('report only the terminal status (QUEUED → SUCCEEDED/FAILED), no IN_PROGRESS first'),
    launcher: z
      .enum(['child_process', 'posix_spawn'])
      .default('child_process')
      .describe('how job programs start: child_process, or posix_spawn (opt-in; needs npm run build:native; runAsUser steps still use child_process)'),
  })
  .prefault({});

const Firmware = z
  .strictObject({
    enabled: z.boolean().default(false).describe('serve OtaFlux-compatible firmware from an OCI registry'),
    registry: z
      .strictObject({
        url: z
          .string()
          .regex(/^(https?:\/\/)?[^/\s]+\/?$/, 'must be host[:port] (OtaFlux style) or http(s)://host[:port]')
          .optional()
          .describe('registry: host[:port] (https, or http with insecure) or http(s)://host[:port]'),
        repositoryPrefix: z.string().default('').describe('repository of device D is <prefix>/D (one trailing "/" ignored)'),
        username: z.string().optional().describe('registry user (basic auth, or for the bearer token service)'),
        password: z.string().optional(),
        insecure: z.boolean().default(false).describe('plain HTTP to the registry (OtaFlux --registry-insecure)'),
      })
      .default({ repositoryPrefix: '', insecure: false }),
    cacheDir: z.string().optional().describe('firmware cache; defaults to <stateDir>/firmware'),
    maxCacheBytes: z
      .number()
      .int()
      .positive()
      .default(256 * 1024 * 1024)
      .describe('cache bound in bytes, on disk and in memory (LRU)'),
    maxEntries: z.number().int().positive().default(1000).describe('devices with a build held in the cache at most'),
    maxNegativeEntries: z
      .number()
      .int()
      .positive()
      .default(256)
      .describe('devices without a build (unknown ids, failed lookups) remembered at most; they never evict a device with a build'),
    notifyTopicPrefix: z.string().default('firmware').describe('new firmware is announced on <prefix>/<device>'),
    freshnessSeconds: seconds('a cached build is served without asking the registry for this long; then the next request refreshes it', 300),
    allowPrerelease: z.boolean().default(true).describe('pre-release tags (1.2.0-rc.1) can be latest (OtaFlux: yes)'),
    allowVPrefix: z.boolean().default(false).describe("tags like v1.2.3 count as 1.2.3 (OtaFlux's code: no)"),
    webhookSecret: z.string().min(1).optional().describe("Harbor's auth header value; when set, POST /webhooks/harbor needs it in Authorization"),
    cosignPublicKey: filePath('PEM public key: when set, a build must carry a cosign signature by it (OtaFlux --cosign-pub-key-path)'),
  })
  .refine((f) => !f.enabled || f.registry.url !== undefined, {
    message: 'firmware.registry.url is required when firmware is enabled',
    path: ['registry', 'url'],
  })
  .refine((f) => !f.registry.url?.startsWith('http://') || f.registry.insecure, {
    message: 'an http:// registry needs insecure: true',
    path: ['registry', 'insecure'],
  })
  .prefault({});

const Devices = z
  .strictObject({
    enabled: z.boolean().default(false).describe('USB hotplug and serial peripherals'),
    profilesDir: z
      .string()
      .min(1)
      .optional()
      .describe('device profiles, one JSON file per family; defaults to the profiles/ shipped with the agent. Watched: changes apply without a restart'),
    ports: z
      .array(
        z.strictObject({
          path: z.string().min(1).describe('device node, e.g. /dev/ttyAMA0 or a pty link'),
          profile: z.string().min(1).describe('name of the profile to open it with'),
          id: z
            .string()
            .regex(/^[A-Za-z0-9_-]{1,96}$/, 'must be 1-96 characters of A-Z, a-z, 0-9, "_" or "-" (it is part of MQTT topics)')
            .optional()
            .describe('device id in topics and the API; defaults to port-<name>'),
        }),
      )
      .default([])
      .describe('serial ports fixed by config, besides hotplug'),
    hotplug: z
      .enum(['auto', 'usb', 'sysfs', 'off'])
      .default('auto')
      .describe('auto: usb package hotplug where it works, else sysfs polling; off: only devices.ports'),
    pollIntervalSeconds: seconds('sysfs polling period when USB hotplug is not used', 1),
    maxDevices: z.number().int().min(1).max(1024).default(32).describe('devices opened at once at most; more are refused and recorded'),
    reconnectMinSeconds: seconds('first delay before a port that failed or closed is opened again; doubles per attempt', 0.5),
    reconnectMaxSeconds: seconds('ceiling of that delay', 30),
    sysfsRoot: z.string().min(1).default('/sys').describe('where sysfs is mounted (tests and containers)'),
    devRoot: z.string().min(1).default('/dev').describe('where device nodes are (tests and containers)'),
  })
  .prefault({});

const Monitor = z
  .strictObject({
    enabled: z.boolean().default(false).describe('host metrics, history and alerts'),
    intervalSeconds: seconds('sampling interval', 10),
    topicPrefix: z
      .string()
      .regex(/^[^#+\s]{1,64}$/, 'must be 1-64 characters without MQTT wildcards or spaces')
      .default('devices')
      .describe('samples go to <prefix>/<thingName>/monitoring'),
    collect: z.boolean().default(false).describe('collector mode: also store every peer sample on <prefix>/+/monitoring'),
    collectorConnections: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(4)
      .describe(
        'collector mode: MQTT connections sharing the fleet samples ($share/ subscription group; each acknowledges a sample once committed). One with the embedded broker, which has no shared subscriptions',
      ),
    retentionDays: z.number().positive().default(7).describe('history older than this is deleted'),
    maxHistoryBytes: z
      .number()
      .int()
      .min(1024 * 1024)
      .default(256 * 1024 * 1024)
      .describe('the history database is kept under this many bytes (oldest points go first)'),
    maxDevices: z.number().int().min(1).max(100_000).default(5000).describe('devices the history holds at most (collector mode)'),
    sysfsRoot: z.string().min(1).default('/sys').describe('where sysfs is mounted, for temperatures (tests and containers)'),
    inventoryHours: z
      .number()
      .min(0.01)
      .max(24 * 30)
      .default(6)
      .describe(
        'the host inventory (model, OS, CPU, memory, disks, GPUs) is read at start and then this often; published retained on <prefix>/<thingName>/inventory',
      ),
    alerts: AlertRulesSchema,
    ...AlertSettingsShape,
    slackWebhookUrl: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe('Slack incoming webhook for alerts (a secret: masked by --print-config)'),
  })
  .prefault({});

const Outbox = z
  .strictObject({
    maxMessages: z.number().int().positive().default(100_000).describe('messages the reconnect queue holds at most'),
    maxBytes: z
      .number()
      .int()
      .positive()
      .default(32 * 1024 * 1024)
      .describe('payload and topic bytes it holds at most'),
    overflow: z.enum(['dropOldest', 'rejectNew']).default('dropOldest').describe('when full: drop the oldest message, or refuse the new one'),
    segmentBytes: z
      .number()
      .int()
      .min(4096)
      .default(4 * 1024 * 1024)
      .describe('size of one log segment file on disk'),
    maxInFlight: z.number().int().min(1).max(65535).default(256).describe('QoS 1 publishes awaiting PUBACK at once'),
    maxPayloadBytes: z
      .number()
      .int()
      .positive()
      .default(128 * 1024)
      .describe('largest payload accepted (AWS IoT Core allows 128 KiB)'),
    allowDollarTopics: z
      .boolean()
      .default(false)
      .describe('accept topics that start with "$" ($SYS/..., $aws/...): brokers keep them for themselves and may disconnect a client that publishes there'),
    maxTopicLevels: z.number().int().min(1).max(65_535).default(8).describe('levels a topic may have ("a/b/c" has 3); AWS IoT Core allows 8 (7 slashes)'),
    maxTopicBytes: z.number().int().min(1).max(65_535).default(256).describe('UTF-8 bytes a topic may have; AWS IoT Core allows 256'),
    poisonDisconnects: z
      .number()
      .int()
      .min(1)
      .max(100)
      .default(3)
      .describe('a message the connection ends right after, this many times in a row, is moved to the dead letters'),
    maxDeadLetters: z.number().int().min(1).max(100_000).default(1000).describe('dead letters kept at most; beyond, the oldest is discarded'),
    storageProbeSeconds: seconds('while the disk refuses writes, how often it is tried again', 5),
  })
  .prefault({});

const Log = z
  .strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info').describe('log level'),
    levels: z
      .record(z.string(), z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
      .default({})
      .describe('per-namespace levels, e.g. {"link":"debug"}'),
  })
  .prefault({});

const Supervisor = z
  .strictObject({
    restartMinSeconds: seconds('first restart delay of a crashed concern', 1),
    restartMaxSeconds: seconds('ceiling of the restart delay', 60),
    maxRestarts: z.number().int().min(0).default(10).describe('restarts in a row before a concern is given up'),
    stableSeconds: seconds('up time that resets the restart count', 60),
    drainSeconds: seconds('how long a clean stop may take', 5),
    exitAfterGiveUpSeconds: z
      .number()
      .min(0)
      .default(30)
      .describe(
        'after a concern gave up (maxRestarts crashes in a row), the agent exits 1 this much later, so systemd starts it afresh; /health shows the give-up meanwhile',
      ),
  })
  .prefault({});

export const ConfigSchema = z.strictObject({
  $schema: z.string().optional().describe('JSON schema reference for editors; ignored'),
  thingName: z
    .string()
    .regex(/^[a-zA-Z0-9:_-]{1,128}$/, 'must be 1-128 characters of a-z, A-Z, 0-9, ":", "_" or "-" (an AWS IoT thing name)')
    .default('edgevisor')
    .describe('the AWS IoT thing name / device id'),
  stateDir: z.string().min(1).default('./var').describe('where durable state lives (systemd: $STATE_DIRECTORY)'),
  mqtt: Mqtt,
  http: Http,
  jobs: Jobs,
  firmware: Firmware,
  devices: Devices,
  monitor: Monitor,
  outbox: Outbox,
  log: Log,
  supervisor: Supervisor,
});

export type Config = z.infer<typeof ConfigSchema>;

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}
