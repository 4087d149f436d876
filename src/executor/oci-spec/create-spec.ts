import path from 'node:path';
import { DEFAULT_PATH } from '../../oci/index.js';
import type { ExecMount, ExecNetwork } from '../types.js';
import {
  ALL_CAPABILITIES,
  DEFAULT_CAPABILITIES,
  DEFAULT_HOSTNAME,
  MASKED_PATHS,
  NOFILE_LIMIT,
  READONLY_PATHS,
  systemMounts,
} from './defaults.js';
import { seccompProfile } from './seccomp.js';
import type { OciMount, OciResources, OciSpec, OciUser } from './types.js';

/** Everything {@link createSpec} needs; all paths are already decided, so the function does no I/O. */
export interface CreateSpecOptions {
  /** Host directory used as the container's root filesystem. */
  rootfs: string;
  args: string[];
  env: string[];
  cwd: string;
  /** Numeric identity, usually from `resolveUser`. */
  user: OciUser;
  mounts?: ExecMount[];
  /** Default `host`: no network namespace. `none`: a new network namespace (runc brings up `lo` only).
   *  `isolated`: join the namespace at `netnsPath` (set up by the executor with slirp4netns). */
  network?: ExecNetwork;
  netnsPath?: string;
  hostname?: string;
  /** Host file bind-mounted at /etc/resolv.conf. */
  resolvConf?: string;
  /** Host file bind-mounted at /etc/hosts. */
  hosts?: string;
  cgroupsPath?: string;
  /** RLIMIT_NOFILE (soft and hard). Default 1048576, as Docker/BuildKit; lower it where kiln may not raise limits. */
  nofileLimit?: number;
  /** cgroup limits runc applies (memory is usually applied by the executor on a parent cgroup instead) */
  resources?: Omit<OciResources, 'devices'>;
  /** BuildKit's `security.insecure`: no seccomp filter, no masked or read-only paths, and `insecureCapabilities` */
  insecure?: boolean;
  /** capabilities of an insecure run (default every one; the executor passes those it holds itself) */
  insecureCapabilities?: string[];
  /** more rlimits (`nofile` here replaces the default) */
  ulimits?: Array<{ name: string; soft: number; hard: number }>;
  /** size of /dev/shm in bytes (default 64 MiB) */
  shmSizeBytes?: number;
  /** give the process a pseudo-terminal (runc creates it in the container's /dev/pts) */
  terminal?: boolean;
}

/**
 * Build the OCI runtime config for one process, with Docker's defaults: its capabilities, kernel filesystems,
 * masked and read-only paths, no_new_privs, a seccomp filter with the effect of Docker's default profile
 * (`seccomp.ts`), and RLIMIT_NOFILE 1048576. Pure: no file is read or written.
 *
 * @example
 * const spec = createSpec({ rootfs: '/mnt/r', args: ['sh', '-c', 'true'], env: [], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [0] } });
 */
/** RLIMIT_NOFILE by default, then `ulimits` (each replaces a limit of the same name). */
function rlimits(opts: CreateSpecOptions): OciSpec['process']['rlimits'] {
  const out = new Map<string, { type: string; hard: number; soft: number }>();
  out.set('RLIMIT_NOFILE', { type: 'RLIMIT_NOFILE', hard: opts.nofileLimit ?? NOFILE_LIMIT, soft: opts.nofileLimit ?? NOFILE_LIMIT });
  for (const u of opts.ulimits ?? []) {
    const type = `RLIMIT_${u.name.toUpperCase()}`;
    out.set(type, { type, hard: u.hard, soft: u.soft });
  }
  return [...out.values()];
}

/** /dev/shm with `size=` from `--shm-size`. */
function withShmSize(mounts: ReturnType<typeof systemMounts>, bytes: number | undefined): ReturnType<typeof systemMounts> {
  if (bytes === undefined) return mounts;
  return mounts.map((m) => (m.destination === '/dev/shm' ? { ...m, options: [...(m.options ?? []).filter((o) => !o.startsWith('size=')), `size=${Math.ceil(bytes / 1024)}k`] } : m));
}

export function createSpec(opts: CreateSpecOptions): OciSpec {
  if (opts.args.length === 0) throw new Error('createSpec: args must not be empty');
  const network = opts.network ?? 'host';
  const isRoot = opts.user.uid === 0;
  if (network === 'isolated' && !opts.netnsPath) throw new Error('createSpec: the isolated network needs netnsPath');
  // isolated (the service's builds): no raw sockets either
  const caps = opts.insecure ? [...(opts.insecureCapabilities ?? ALL_CAPABILITIES)] : DEFAULT_CAPABILITIES.filter((c) => network !== 'isolated' || c !== 'CAP_NET_RAW');
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: opts.terminal === true,
      user: { uid: opts.user.uid, gid: opts.user.gid, additionalGids: [...opts.user.additionalGids] },
      args: [...opts.args],
      env: withDefaultPath(opts.env),
      cwd: toContainerPath(opts.cwd),
      // Like Docker: a non-root process keeps the bounding set but starts with no effective capabilities.
      capabilities: { bounding: caps, effective: isRoot ? caps : [], permitted: isRoot ? caps : [] },
      rlimits: rlimits(opts),
      // like Docker: setuid binaries and file capabilities cannot raise a RUN's privileges (insecure: as the host)
      noNewPrivileges: !opts.insecure,
    },
    root: { path: opts.rootfs, readonly: false },
    hostname: opts.hostname || DEFAULT_HOSTNAME,
    mounts: [...withShmSize(systemMounts(), opts.shmSizeBytes), ...networkFileMounts(opts), ...(opts.mounts ?? []).map(toOciMount)],
    linux: {
      namespaces: [
        { type: 'pid' },
        { type: 'ipc' },
        { type: 'uts' },
        { type: 'mount' },
        ...(network === 'none' ? [{ type: 'network' as const }] : []),
        ...(network === 'isolated' ? [{ type: 'network' as const, path: opts.netnsPath! }] : []),
      ],
      resources: { devices: [{ allow: false, access: 'rwm' }], ...(opts.resources ?? {}) },
      ...(opts.cgroupsPath ? { cgroupsPath: opts.cgroupsPath } : {}),
      maskedPaths: opts.insecure ? [] : [...MASKED_PATHS],
      readonlyPaths: opts.insecure ? [] : [...READONLY_PATHS],
      ...(opts.insecure ? {} : { seccomp: seccompProfile() }),
    },
  };
}

/** Container paths a spec mounts over, in mount order (used to find mount-point stubs runc will create). */
export function mountDestinations(spec: OciSpec): string[] {
  return spec.mounts.map((m) => m.destination);
}

/** Keep `env` as given, adding Docker's default PATH when no PATH entry is present. */
export function withDefaultPath(env: string[]): string[] {
  return env.some((e) => e.startsWith('PATH=')) ? [...env] : [...env, `PATH=${DEFAULT_PATH}`];
}

function networkFileMounts(opts: CreateSpecOptions): OciMount[] {
  const out: OciMount[] = [];
  if (opts.resolvConf) out.push(fileBind(opts.resolvConf, '/etc/resolv.conf'));
  if (opts.hosts) out.push(fileBind(opts.hosts, '/etc/hosts'));
  return out;
}

function fileBind(source: string, destination: string): OciMount {
  return { destination, type: 'bind', source, options: ['rbind', 'rprivate'] };
}

function toOciMount(m: ExecMount): OciMount {
  const destination = toContainerPath(m.destination);
  const extra = m.options ?? [];
  if (m.type === 'bind') {
    if (!m.source) throw new Error(`bind mount at ${destination} has no source`);
    return { destination, type: 'bind', source: m.source, options: ['rbind', m.readonly ? 'ro' : 'rw', ...extra] };
  }
  return { destination, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', ...(m.readonly ? ['ro'] : []), ...extra] };
}

/** Clean an in-container path and make it absolute (relative paths are taken from `/`). */
export function toContainerPath(p: string): string {
  return path.posix.resolve('/', p);
}
