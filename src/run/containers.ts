/**
 * Containers' records: `ROOT/containers/<id>/state.json` (written whole, through a temp file and a rename), the
 * container's output in `container.log` beside it, its kept writes in `upper/`, and `ROOT/containers/names/<name>`,
 * a symlink to the id (created exclusively, so two runs cannot take one name). A record names the process that
 * supervises the container (pid and start time): while it lives the container is what the record says; once it is
 * gone without writing the end, the container counts as exited (255, as Docker reports a container whose daemon died).
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { BuildError } from '../errors/index.js';
import type { ExecNetwork, PortForward } from '../executor/index.js';
import { ownerAlive, processStartTime, type ProcessOwner } from '../proc/index.js';
import type { VolumeSpec } from './run.js';

/** What a container runs, as given to `kiln run` (the supervisor runs it from this). */
export interface ContainerConfig {
  image: string;
  cmd: string[];
  entrypoint?: string[];
  env: string[];
  workdir?: string;
  user?: string;
  network: ExecNetwork;
  volumes: VolumeSpec[];
  hostname?: string;
  tty: boolean;
  /** `-i`: stdin stays open (detached: a pipe that is never written) */
  interactive: boolean;
  portForwards: PortForward[];
}

/** One container's record. */
export interface ContainerRecord {
  /** 64 hex digits; `kiln ps` shows the first 12 */
  id: string;
  name: string;
  config: ContainerConfig;
  /** ISO time */
  created: string;
  detached: boolean;
  /** `--rm`: records and writes are removed when it exits */
  autoRemove: boolean;
  /** the kiln process that created the record, runs the container and writes its end */
  supervisor: ProcessOwner;
  /** what it runs (ENTRYPOINT + CMD), once it runs */
  command?: string[];
  /** the container's process on the host, once it runs */
  process?: ProcessOwner;
  state: 'created' | 'running' | 'exited';
  started?: string;
  finished?: string;
  exitCode?: number;
  /** why it could not start or ended early */
  error?: string;
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const LOST_EXIT_CODE = 255;

export function containersDir(root: string): string {
  return path.join(root, 'containers');
}

/** The folder of one container. */
export function containerDir(root: string, id: string): string {
  return path.join(containersDir(root), id);
}

/** The file holding a container's output. */
export function containerLog(root: string, id: string): string {
  return path.join(containerDir(root, id), 'container.log');
}

/**
 * Create the record of a new container (state `created`, supervised by this process), reserving its name (`--name`,
 * else a generated one).
 *
 * @throws BuildError ERR_KILN_CONTAINER_NAME_IN_USE when another container has the name
 */
export async function createContainerRecord(opts: { root: string; name?: string; config: ContainerConfig; detached: boolean; autoRemove: boolean }): Promise<ContainerRecord> {
  if (opts.name !== undefined && !NAME.test(opts.name)) {
    throw new BuildError('ERR_KILN_ARGUMENT', `--name "${opts.name}": a name is letters, digits and _ . - (starting with a letter or digit)`);
  }
  const id = randomBytes(32).toString('hex');
  await fsp.mkdir(path.join(containersDir(opts.root), 'names'), { recursive: true, mode: 0o700 });
  const name = opts.name ?? (await generatedName(opts.root, id));
  if (opts.name !== undefined) await reserveName({ root: opts.root, name, id });
  const rec: ContainerRecord = {
    id,
    name,
    config: opts.config,
    created: new Date().toISOString(),
    detached: opts.detached,
    autoRemove: opts.autoRemove,
    supervisor: selfOwner(),
    state: 'created',
  };
  await fsp.mkdir(containerDir(opts.root, id), { recursive: true, mode: 0o700 });
  await writeContainerRecord(opts.root, rec);
  return rec;
}

async function generatedName(root: string, id: string): Promise<string> {
  for (let i = 0; ; i++) {
    const name = `${pick(ADJECTIVES)}_${pick(NOUNS)}${i >= 5 ? `_${i}` : ''}`;
    try {
      await reserveName({ root, name, id });
      return name;
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_KILN_CONTAINER_NAME_IN_USE' || i > 50) throw err;
    }
  }
}

async function reserveName(opts: { root: string; name: string; id: string }): Promise<void> {
  const link = path.join(containersDir(opts.root), 'names', opts.name);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await fsp.symlink(opts.id, link);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await fsp.readlink(link).catch(() => '');
    // a name left by a record that is gone (removed by hand, or a crash between the two steps of rm) is free
    if (holder && (await readRecordFile(opts.root, holder))) {
      throw new BuildError('ERR_KILN_CONTAINER_NAME_IN_USE', `the container name "${opts.name}" is already in use by container "${holder}"`);
    }
    await fsp.rm(link, { force: true });
  }
  throw new BuildError('ERR_KILN_CONTAINER_NAME_IN_USE', `the container name "${opts.name}" is already in use`);
}

/** Write a record whole (temp file, then rename: a reader never sees half of one). */
export async function writeContainerRecord(root: string, rec: ContainerRecord): Promise<void> {
  const file = path.join(containerDir(root, rec.id), 'state.json');
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await fsp.writeFile(tmp, JSON.stringify(rec, null, 2), { mode: 0o600 });
  await fsp.rename(tmp, file);
}

async function readRecordFile(root: string, id: string): Promise<ContainerRecord | undefined> {
  try {
    return JSON.parse(await fsp.readFile(path.join(containerDir(root, id), 'state.json'), 'utf8')) as ContainerRecord;
  } catch {
    return undefined;
  }
}

/** A record as it stands now: one whose supervisor died before writing its end counts as exited (255). */
export function currentState(rec: ContainerRecord): ContainerRecord {
  if (rec.state === 'exited' || ownerAlive(rec.supervisor)) return rec;
  return { ...rec, state: 'exited', exitCode: LOST_EXIT_CODE, error: rec.error ?? 'the process supervising the container stopped (killed or crashed)' };
}

/** Every container's record, newest first, with {@link currentState}. */
export async function listContainers(root: string): Promise<ContainerRecord[]> {
  const names = await fsp.readdir(containersDir(root)).catch(() => [] as string[]);
  const out: ContainerRecord[] = [];
  for (const n of names) {
    if (!/^[0-9a-f]{64}$/.test(n)) continue;
    const rec = await readRecordFile(root, n);
    if (rec) out.push(currentState(rec));
  }
  return out.sort((a, b) => b.created.localeCompare(a.created));
}

/**
 * The container a user named: its name, its id, or a prefix of one id.
 *
 * @throws BuildError ERR_KILN_CONTAINER_NOT_FOUND
 */
export async function findContainer(root: string, ref: string): Promise<ContainerRecord> {
  const byName = await fsp.readlink(path.join(containersDir(root), 'names', ref)).catch(() => undefined);
  const named = byName && NAME.test(ref) ? await readRecordFile(root, byName) : undefined;
  if (named) return currentState(named);
  const all = /^[0-9a-f]+$/.test(ref) ? (await listContainers(root)).filter((c) => c.id.startsWith(ref)) : [];
  if (all.length === 1) return all[0]!;
  if (all.length > 1) throw new BuildError('ERR_KILN_ARGUMENT', `"${ref}" is the start of ${all.length} containers' ids: give more of it`);
  throw new BuildError('ERR_KILN_CONTAINER_NOT_FOUND', `no such container: ${ref}`);
}

/** Remove a container's folder (log, kept writes, record) and its name. */
export async function removeContainerFiles(root: string, rec: ContainerRecord): Promise<void> {
  const link = path.join(containersDir(root), 'names', rec.name);
  if ((await fsp.readlink(link).catch(() => '')) === rec.id) await fsp.rm(link, { force: true });
  await fsp.rm(containerDir(root, rec.id), { recursive: true, force: true, maxRetries: 3 });
}

/** This process as a record's supervisor. */
export function selfOwner(): ProcessOwner {
  return { pid: process.pid, startTime: processStartTime(process.pid) ?? '' };
}

function pick(words: readonly string[]): string {
  return words[randomBytes(1)[0]! % words.length]!;
}

const ADJECTIVES = ['amber', 'brave', 'calm', 'dapper', 'eager', 'fond', 'gentle', 'hardy', 'jolly', 'keen', 'lucid', 'merry', 'nimble', 'proud', 'quiet', 'rapid', 'sunny', 'tidy', 'vivid', 'witty'] as const;
const NOUNS = ['anvil', 'bellows', 'crucible', 'ember', 'flame', 'forge', 'glaze', 'hearth', 'ingot', 'kettle', 'ladle', 'mould', 'oven', 'pottery', 'quench', 'smelter', 'tongs', 'vessel', 'wick', 'cinder'] as const;
