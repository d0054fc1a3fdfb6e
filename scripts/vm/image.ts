/**
 * Builds the boot image of the test VMs: Debian's stock kernel and an initramfs with busybox,
 * systemd-udevd, the host's node and (optionally) the built agent; or, with --systemd, systemd
 * as PID 1 and the release for scripts/install.sh (scripts/vm/systemd.ts).
 *
 *   npx tsx scripts/vm/image.ts [--agent] [--systemd]   prints {"kernel", "initrd", ...} as JSON
 *
 * The kernel and udev come from Debian's packages (`apt-get download`, unpacked with dpkg-deb,
 * never installed on the host). Everything is cached under $EDGEVISOR_VM_CACHE (default
 * ~/.cache/edgevisor-vm): the packages unpacked, by version (the .debs are not kept), the base
 * initramfs by a hash of what goes into it, each further layer (agent, systemd, release) by a
 * hash of its files, so a second run with nothing changed builds nothing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
  lstatSync,
  copyFileSync,
  appendFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeCpio, type Entry } from './cpio.js';
import { SYSTEMD_PACKAGES, systemdEntries } from './systemd.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The builder's own code is part of every cache key: a change to it rebuilds the images. */
const BUILDER = hash(['image.ts', 'cpio.ts', 'systemd.ts'].map((file) => readFileSync(join(here, file))));
const repoRoot = join(here, '../..');
/** Drivers the guest loads (with what they depend on): USB host controller, FTDI serial, the NIC. */
const MODULES = ['xhci_pci', 'usbserial', 'ftdi_sio', 'e1000'];
const GUEST_LIB = '/lib/x86_64-linux-gnu';

export interface Image {
  kernel: string;
  initrd: string;
  kernelVersion: string;
  /** what each part's cache key was made of, for the log */
  packages: Record<string, string>;
  built: string[];
  /** with `systemd`: where the guest holds the unpacked release (as from npm run release) */
  release?: string;
}

export function cacheDir(): string {
  return process.env.EDGEVISOR_VM_CACHE ?? join(homedir(), '.cache', 'edgevisor-vm');
}

/**
 * The kernel and initramfs, built or taken from the cache; with `agent`, the built agent is in
 * it (at /opt/edgevisor); with `systemd`, systemd boots as PID 1 and the release waits unpacked
 * in /root for scripts/install.sh.
 */
export function buildImage(options: { agent?: boolean; systemd?: boolean; log?: (line: string) => void } = {}): Image {
  const log = options.log ?? (() => {});
  if (!existsSync('/bin/busybox')) throw new Error('/bin/busybox is missing: apt-get install busybox-static (.ci/run installs it)');
  const cache = cacheDir();
  mkdirSync(cache, { recursive: true });
  const built: string[] = [];

  const { names, versions } = resolvePackages(cache);
  const kernelPackage = names[0];
  const trees = unpackPackages(cache, names, versions, log);
  const packages = Object.fromEntries(names.map((name) => [name, basename(trees[name]).slice(name.length + 1)]));

  const kernelTree = trees[kernelPackage];
  const kernelVersion = readdirSync(join(kernelTree, 'lib/modules'))[0];
  const kernel = uncompressedKernel(cache, join(kernelTree, 'boot', `vmlinuz-${kernelVersion}`), basename(kernelTree), log);
  const libraryPath = Object.values(trees).flatMap((tree) => [join(tree, 'lib/x86_64-linux-gnu'), join(tree, 'usr/lib/x86_64-linux-gnu')]);

  const baseKey = hash([
    BUILDER,
    JSON.stringify(packages),
    readFileSync(join(here, 'init.sh')),
    readFileSync(join(here, 'probe.mjs')),
    MODULES.join(','),
    fileHash('/bin/busybox'),
    fileHash(process.execPath),
  ]);
  const base = join(cache, `base-${baseKey}.cpio`);
  if (!existsSync(base)) {
    log(`building ${basename(base)}`);
    atomically(base, (tmp) => writeCpio(tmp, baseEntries(kernelTree, kernelVersion, trees.udev, libraryPath)));
    built.push(base);
  }
  touch(base);
  let initrd = base;

  const layers = [base];
  let release: string | undefined;
  if (options.agent) layers.push(layer(cache, 'agent', agentEntries(libraryPath), built, log));
  if (options.systemd) {
    const systemdTrees = unpackPackages(cache, SYSTEMD_PACKAGES, versions, log);
    for (const name of SYSTEMD_PACKAGES) packages[name] = basename(systemdTrees[name]).slice(name.length + 1);
    const systemdPath = [...libraryPath, join(systemdTrees['libsystemd-shared'], 'usr/lib/x86_64-linux-gnu/systemd')];
    layers.push(
      layer(
        cache,
        'systemd',
        withParents(systemdEntries({ ...systemdTrees, udev: trees.udev }, here, (programs) => libraries(programs, systemdPath))),
        built,
        log,
      ),
    );
    release = `/root/edgevisor-${JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version}`;
    layers.push(layer(cache, 'release', agentEntries(libraryPath, release), built, log));
  }
  if (layers.length > 1) {
    // The kernel unpacks concatenated archives one after the other; qemu takes one initrd file.
    initrd = join(cache, `initrd-${hash(layers)}.cpio`);
    if (!existsSync(initrd)) {
      atomically(initrd, (tmp) => {
        copyFileSync(base, tmp);
        for (const part of layers.slice(1)) appendFileSync(tmp, readFileSync(part));
      });
      built.push(initrd);
    }
    touch(initrd);
  }
  prune(cache);
  return { kernel, initrd, kernelVersion, packages, built, release };
}

/**
 * The kernel as an uncompressed ELF (vmlinux), which qemu boots directly through its PVH entry
 * point: under TCG that skips seconds of firmware and of the boot stub decompressing bzImage.
 * Falls back to the bzImage when the payload is not xz (or xz is missing).
 */
function uncompressedKernel(cache: string, bzImage: string, name: string, log: (line: string) => void): string {
  const target = join(cache, `vmlinux-${name}`);
  if (existsSync(target)) return target;
  const image = readFileSync(bzImage);
  const at = image.indexOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]));
  if (at < 0) return bzImage;
  log(`unpacking ${basename(target)}`);
  try {
    // From a file, not a pipe: with --single-stream xz stops reading after the first stream and
    // exits, and a writer still feeding its stdin got EPIPE (3 runs in 10).
    const payload = `${target}.xz`;
    writeFileSync(payload, image.subarray(at));
    try {
      atomically(target, (tmp) => writeFileSync(tmp, execFileSync('xz', ['-dc', '--single-stream', payload], { maxBuffer: 1 << 30 })));
    } finally {
      rmSync(payload, { force: true });
    }
  } catch (error) {
    log(`no vmlinux (${(error as Error).message}): booting the bzImage`);
    return bzImage;
  }
  return target;
}

/**
 * The packages (the kernel linux-image-amd64 points at, udev and the libraries udev links) and
 * their candidate versions, and those of the systemd layer's packages, from apt's lists. apt-cache is slow, so the answer is kept until
 * the lists change (apt-get update).
 */
function resolvePackages(cache: string): { names: string[]; versions: Record<string, string> } {
  const memo = join(cache, 'packages.json');
  const lists = `${statSync('/var/lib/apt/lists').mtimeMs}`;
  try {
    const saved = JSON.parse(readFileSync(memo, 'utf8'));
    if (saved.lists === lists && saved.builder === BUILDER) return saved;
  } catch {}
  const depends = run('apt-cache', ['depends', 'linux-image-amd64', 'udev']);
  const sections = depends.split(/^(?=\S)/m);
  const of = (name: string) => [...(sections.find((s) => s.startsWith(`${name}\n`)) ?? '').matchAll(/^\s*Depends: (\S+)$/gm)].map((m) => m[1]);
  const kernel = of('linux-image-amd64').find((name) => name.startsWith('linux-image-'));
  if (!kernel) throw new Error('apt-cache knows no linux-image-amd64 dependency (run apt-get update)');
  const names = [kernel, 'udev', ...of('udev').filter((name) => name.startsWith('lib') && name !== 'libc6')];
  const policy = run('apt-cache', ['policy', ...names, ...SYSTEMD_PACKAGES]);
  const versions: Record<string, string> = {};
  for (const section of policy.split(/^(?=\S)/m)) {
    const name = /^(\S+?)(:amd64)?:\n/.exec(section)?.[1];
    const version = /^\s*Candidate: (\S+)$/m.exec(section)?.[1];
    if (name && version && version !== '(none)') versions[name] = version;
  }
  for (const name of [...names, ...SYSTEMD_PACKAGES]) if (!versions[name]) throw new Error(`apt has no candidate for ${name} (run apt-get update)`);
  atomically(memo, (tmp) => writeFileSync(tmp, JSON.stringify({ builder: BUILDER, lists, names, versions })));
  return { names, versions };
}

/** Downloads (apt-get download) and unpacks (dpkg-deb -x) each package's candidate version once. */
function unpackPackages(cache: string, names: string[], versions: Record<string, string>, log: (line: string) => void): Record<string, string> {
  const debs = join(cache, `debs.tmp-${process.pid}`); // this run's downloads only: parallel runs may fetch the same
  const pkgs = join(cache, 'pkgs');
  mkdirSync(pkgs, { recursive: true });
  const tree = (name: string) => join(pkgs, `${name}_${versions[name].replace(/[^\w.+~-]/g, '_')}`);
  const missing = names.filter((name) => !existsSync(tree(name)));
  if (missing.length) {
    log(`apt-get download ${missing.join(' ')}`);
    mkdirSync(debs, { recursive: true });
    try {
      run('apt-get', ['download', '-q', ...missing.map((name) => `${name}=${versions[name]}`)], debs);
      for (const name of missing) {
        const deb = readdirSync(debs).find((file) => file.startsWith(`${name}_`) && decodeURIComponent(file).includes(`_${versions[name]}_`));
        if (!deb) throw new Error(`apt-get download left no .deb for ${name} ${versions[name]}`);
        atomically(tree(name), (tmp) => run('dpkg-deb', ['-x', join(debs, deb), tmp]));
      }
    } finally {
      rmSync(debs, { recursive: true, force: true }); // the unpacked trees are what is kept
    }
  }
  return Object.fromEntries(names.map((name) => [name, tree(name)]));
}

function baseEntries(kernelTree: string, kernelVersion: string, udevTree: string, libraryPath: string[]): Entry[] {
  const entries: Entry[] = [
    { type: 'file', path: '/init', mode: 0o755, source: join(here, 'init.sh') },
    { type: 'file', path: '/bin/busybox', mode: 0o755, source: '/bin/busybox' },
    { type: 'char', path: '/dev/console', major: 5, minor: 1 },
    { type: 'char', path: '/dev/null', mode: 0o666, major: 1, minor: 3 },
    { type: 'file', path: '/usr/bin/udevadm', mode: 0o755, source: join(udevTree, 'bin/udevadm') },
    { type: 'symlink', path: '/usr/lib/systemd/systemd-udevd', target: '/usr/bin/udevadm' },
    { type: 'file', path: '/usr/bin/node', mode: 0o755, source: process.execPath },
    { type: 'file', path: '/opt/probe.mjs', source: join(here, 'probe.mjs') },
    // the groups Debian's udev rules name, and the agent's own user as deploy/ sets it up (not in dialout)
    { type: 'file', path: '/etc/passwd', data: 'root:x:0:0:root:/root:/bin/sh\nedgevisor:x:999:999::/var/lib/edgevisor:/bin/sh\n' },
    {
      type: 'file',
      path: '/etc/group',
      data: 'root:x:0:\ntty:x:5:\ndisk:x:6:\nlp:x:7:\ndialout:x:20:\ncdrom:x:24:\ntape:x:26:\naudio:x:29:\nvideo:x:44:\nplugdev:x:46:\ninput:x:101:\nkvm:x:102:\nrender:x:103:\nsgx:x:104:\nedgevisor:x:999:\n',
    },
    { type: 'file', path: '/etc/hosts', data: '127.0.0.1 localhost\n::1 localhost\n' },
    { type: 'dir', path: '/etc/udev/rules.d' },
  ];
  for (const file of walk(join(udevTree, 'lib/udev/rules.d'))) {
    entries.push({ type: 'file', path: `/usr/lib/udev/rules.d/${basename(file)}`, source: file });
  }
  entries.push(...libraries(['/bin/busybox', process.execPath, join(udevTree, 'bin/udevadm')], libraryPath));

  const modules = moduleOrder(join(kernelTree, 'lib/modules', kernelVersion));
  for (const path of modules) {
    entries.push({ type: 'file', path: `/lib/modules/${path}`, source: join(kernelTree, 'lib/modules', kernelVersion, path) });
  }
  entries.push({ type: 'file', path: '/etc/ev-modules', data: `${modules.join('\n')}\n` });
  return withParents(entries);
}

/** One archive of the initramfs, keyed by a hash of what goes into it. */
function layer(cache: string, kind: string, entries: Entry[], built: string[], log: (line: string) => void): string {
  const key = hash([
    BUILDER,
    ...entries.map((entry) => `${entry.path}\0${entry.type === 'file' && entry.source ? fileHash(entry.source) : JSON.stringify(entry)}`),
  ]);
  const file = join(cache, `${kind}-${key}.cpio`);
  if (!existsSync(file)) {
    log(`building ${basename(file)}`);
    atomically(file, (tmp) => writeCpio(tmp, entries));
    built.push(file);
  }
  touch(file);
  return file;
}

/**
 * The agent as installed at /opt/edgevisor: its bundle, package.json, profiles and the
 * production node_modules. With `release`, the unpacked release tarball there instead, as
 * scripts/release.sh packs it (deploy/ and scripts/install.sh too), for install.sh to install.
 */
function agentEntries(libraryPath: string[], release?: string): Entry[] {
  const root = release ?? '/opt/edgevisor';
  const bundle = join(repoRoot, 'dist/bundle/main.js');
  if (!existsSync(bundle)) throw new Error(`${bundle} is missing: run npm run build first`);
  const entries: Entry[] = [];
  const add = (from: string, skip = (_: string) => false) => {
    for (const file of walk(from, skip)) {
      const to = `${root}/${relative(repoRoot, file)}`;
      const stat = lstatSync(file);
      if (stat.isSymbolicLink()) entries.push({ type: 'symlink', path: to, target: readlinkSync(file) });
      else entries.push({ type: 'file', path: to, mode: stat.mode & 0o777, source: file });
    }
  };
  entries.push({ type: 'file', path: `${root}/package.json`, source: join(repoRoot, 'package.json') });
  add(join(repoRoot, 'dist/bundle'));
  if (existsSync(join(repoRoot, 'profiles'))) add(join(repoRoot, 'profiles'));
  const rule = join(repoRoot, 'deploy/99-edgevisor.rules');
  if (release) {
    // the posix_spawn launcher, where npm run build compiled it
    if (existsSync(join(repoRoot, 'dist/native'))) add(join(repoRoot, 'dist/native'));
    add(join(repoRoot, 'deploy'));
    entries.push({ type: 'file', path: `${root}/scripts/install.sh`, mode: 0o755, source: join(repoRoot, 'scripts/install.sh') });
  } else if (existsSync(rule)) {
    // the udev rule deploy/ ships: the agent's group gets the matched ttys
    entries.push({ type: 'file', path: '/etc/udev/rules.d/99-edgevisor.rules', source: rule });
  }
  // npm's own view of the production dependency tree, nested copies included
  const listed = spawnSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: repoRoot, encoding: 'utf8' });
  const packageDirs = listed.stdout.split('\n').filter((line) => line.startsWith(join(repoRoot, 'node_modules') + '/'));
  // native packages ship prebuilt addons for every platform: the guest is glibc x86-64
  const skip = (dir: string) => (path: string) => {
    const inside = path.slice(dir.length);
    return (
      basename(path) === 'node_modules' ||
      /^\/(test|tests|docs?|examples?)$/.test(inside) ||
      /^\/prebuilds\/(?!linux-x64)[^/]+$/.test(inside) ||
      /\.musl\.node$/.test(inside)
    );
  };
  for (const dir of packageDirs) add(dir, skip(dir));
  // native addons (serialport, usb) and the shared libraries they link
  const addons = entries.flatMap((entry) => (entry.type === 'file' && entry.source!.endsWith('.node') ? [entry.source!] : []));
  entries.push(...libraries(addons, libraryPath));
  return withParents(entries);
}

/** The shared libraries (ldd) the programs need, at the paths the guest's loader looks in. */
function libraries(programs: string[], libraryPath: string[]): Entry[] {
  const entries = new Map<string, Entry>();
  for (const program of programs) {
    const ldd = spawnSync('ldd', [program], { encoding: 'utf8', env: { ...process.env, LD_LIBRARY_PATH: libraryPath.filter(existsSync).join(':') } });
    if (/not a dynamic executable/.test(ldd.stdout + ldd.stderr)) continue; // busybox-static
    if (ldd.status !== 0) throw new Error(`ldd ${program} failed: ${ldd.stderr.trim()}`);
    const out = ldd.stdout;
    for (const line of out.split('\n')) {
      const missing = /^\s*(\S+) => not found/.exec(line);
      if (missing) throw new Error(`${program} needs ${missing[1]}, which neither the host nor the unpacked packages have`);
      const linked = /^\s*(\S+) => (\/\S+)/.exec(line);
      if (linked) entries.set(linked[1], { type: 'file', path: `${GUEST_LIB}/${linked[1]}`, mode: 0o755, source: linked[2] });
      const loader = /^\s*(\/\S+) \(0x/.exec(line);
      if (loader) entries.set(loader[1], { type: 'file', path: loader[1], mode: 0o755, source: loader[1] });
    }
  }
  return [...entries.values()];
}

/** Module files (relative to the modules dir) in an order insmod can load them: dependencies first. */
function moduleOrder(modulesDir: string): string[] {
  const byName = new Map<string, string>();
  for (const file of walk(join(modulesDir, 'kernel'))) {
    if (file.endsWith('.ko')) byName.set(basename(file, '.ko').replace(/-/g, '_'), relative(modulesDir, file));
  }
  const order: string[] = [];
  const visit = (name: string) => {
    const path = byName.get(name);
    if (!path) throw new Error(`kernel module ${name} is not in ${modulesDir}`);
    if (order.includes(path)) return;
    const info = readFileSync(join(modulesDir, path));
    const at = info.indexOf('\0depends=');
    const depends = at < 0 ? '' : info.subarray(at + 9, info.indexOf(0, at + 9)).toString();
    for (const dep of depends.split(',').filter(Boolean)) visit(dep.replace(/-/g, '_'));
    order.push(path);
  };
  for (const name of MODULES) visit(name);
  return order;
}

/** Every entry's parent directories, before it (the kernel creates nothing on its own). */
function withParents(entries: Entry[]): Entry[] {
  const seen = new Set<string>();
  const out: Entry[] = [];
  for (const entry of entries) {
    const parts = entry.path.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      const dir = `/${parts.slice(0, i).join('/')}`;
      if (!seen.has(dir)) seen.add(dir), out.push({ type: 'dir', path: dir });
    }
    if (entry.type === 'dir' && seen.has(entry.path)) continue;
    seen.add(entry.path);
    out.push(entry);
  }
  return out;
}

function walk(dir: string, skip: (path: string) => boolean = () => false): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (skip(path)) continue;
    const stat = lstatSync(path);
    if (stat.isDirectory()) out.push(...walk(path, skip));
    else if (stat.isFile() || stat.isSymbolicLink()) out.push(path);
  }
  return out;
}

function run(command: string, args: string[], cwd?: string, env: Record<string, string> = {}): string {
  try {
    return execFileSync(command, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

function hash(parts: Array<string | Buffer>): string {
  const h = createHash('sha256');
  for (const part of parts) h.update(part).update('\0');
  return h.digest('hex').slice(0, 16);
}

const hashes = new Map<string, string>();
function fileHash(path: string): string {
  const stat = statSync(path);
  const key = `${path}:${stat.size}:${stat.mtimeMs}`;
  if (!hashes.has(key)) hashes.set(key, createHash('sha256').update(readFileSync(path)).digest('hex'));
  return hashes.get(key)!;
}

/** Builds into a temporary name and renames, so a crash or a parallel build never leaves half a file. */
function atomically(target: string, build: (tmp: string) => void): void {
  const tmp = `${target}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    build(tmp);
    renameSync(tmp, target);
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(target)) throw error;
  }
}

function touch(path: string): void {
  const now = new Date();
  utimesSync(path, now, now);
}

/**
 * Each agent build makes new images: of each kind the two used last are kept, others go once
 * unused for ten minutes (a parallel run may have just built one); anything unused for two days goes.
 */
function prune(cache: string): void {
  const now = Date.now();
  const images = readdirSync(cache)
    .filter((name) => /^(base|agent|systemd|release|initrd)-.*\.cpio$/.test(name))
    .map((name) => ({ name, kind: name.split('-')[0], used: statSync(join(cache, name)).mtimeMs }))
    .sort((a, b) => b.used - a.used);
  const rank = new Map<string, number>();
  for (const image of images) {
    const n = (rank.get(image.kind) ?? 0) + 1;
    rank.set(image.kind, n);
    if ((n > 2 && now - image.used > 600_000) || now - image.used > 2 * 24 * 3600_000) rmSync(join(cache, image.name), { force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const image = buildImage({ agent: process.argv.includes('--agent'), systemd: process.argv.includes('--systemd'), log: (line) => console.error(line) });
  writeFileSync(1, `${JSON.stringify(image, null, 2)}\n`);
}
