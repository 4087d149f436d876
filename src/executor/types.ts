/** A mount added to the container on top of its root filesystem. */
export interface ExecMount {
  type: 'bind' | 'tmpfs';
  /** Host path of a bind mount (required for `bind`, ignored for `tmpfs`). */
  source?: string;
  /** Absolute path inside the container. */
  destination: string;
  readonly?: boolean;
  /** Extra mount options, appended to kiln's defaults (e.g. `size=64m`, `mode=1777`). */
  options?: string[];
}

/**
 * Network mode of a run: share the host's network namespace (`host`), a new one with only `lo` (`none`), or a new one
 * with user-mode egress through slirp4netns and no route to the host's loopback (`isolated`, what a service uses).
 */
export type ExecNetwork = 'host' | 'none' | 'isolated';

/** Per-run resource limits (unset = unlimited). */
export interface ExecLimits {
  /** memory (and memory+swap) limit; a run killed for going past it reports `stoppedBy: 'memory'` */
  memoryBytes?: number;
  /** most processes/threads at once */
  pids?: number;
  /** relative CPU weight (cgroup cpu.shares; Docker's default is 1024) */
  cpuShares?: number;
  /** wall-clock limit of the run; past it the container is killed and the run reports `stoppedBy: 'time'` */
  timeoutMs?: number;
  /** stop the run (`stoppedBy: 'disk'`) once `dir` (the step's upper directory) holds more than `maxBytes` */
  disk?: { dir: string; maxBytes: number };
}

/** One process to run in a container. */
export interface ExecRequest {
  /** An already-mounted root filesystem directory (kiln mounts overlayfs itself). */
  rootfs: string;
  args: string[];
  env: string[];
  cwd: string;
  /** Dockerfile USER syntax: '', 'name', 'uid', 'name:group', 'uid:gid'. Resolved against rootfs /etc/passwd and
   *  /etc/group (numeric ids need no entry; unknown name => BuildError with a clear message). Default root. */
  user?: string;
  mounts?: ExecMount[];
  /** Default `host`: share the host netns, with copies of the host's /etc/resolv.conf and /etc/hosts. */
  network?: ExecNetwork;
  hostname?: string;
  limits?: ExecLimits;
  /** `RUN --security=insecure` (only where the server allows it): every capability, no seccomp, no masked paths */
  insecure?: boolean;
  /** `--add-host HOST:IP`: lines added to the container's /etc/hosts */
  extraHosts?: Array<{ host: string; ip: string }>;
  /** `--ulimit NAME=SOFT[:HARD]`: process rlimits (`nofile` replaces the default RLIMIT_NOFILE) */
  ulimits?: Ulimit[];
  /** `--shm-size`: the size of /dev/shm in bytes (default 64 MiB, as Docker) */
  shmSizeBytes?: number;
  /**
   * A pseudo-terminal for the process (`kiln run -t`): stdin, stdout and stderr are the terminal, and what it prints
   * arrives through `onStdout` (with `\r\n` line ends, as from any terminal). runc relays it, which needs a terminal
   * of its own: it runs under util-linux's `script`.
   */
  tty?: boolean;
  /**
   * The process's stdin: `inherit` is kiln's own stdin (`kiln run -i`), `open` a pipe that stays open and is never
   * written (a shell waits instead of reading end-of-file; the default with `tty`), unset /dev/null.
   */
  stdin?: 'inherit' | 'open';
  /** Called once the process runs, with its pid on the host. */
  onStart?: (info: { pid: number }) => void;
  /** Host ports forwarded into an `isolated` network (slirp4netns `add_hostfwd`); only with `network: 'isolated'`. */
  portForwards?: PortForward[];
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  signal?: AbortSignal;
}

/** A host port forwarded to a port of the container (`-p [IP:]HOST:CONTAINER[/PROTO]`). */
export interface PortForward {
  /** host address to listen on (default 0.0.0.0, as Docker) */
  hostIp?: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

/** One rlimit: `nofile`, `nproc`, `core`, ... (RLIMIT_ + upper case) with its soft and hard values. */
export interface Ulimit {
  name: string;
  soft: number;
  hard: number;
}

/** How a run ended. A process killed by signal N reports `128 + N`. */
export interface ExecResult {
  exitCode: number;
  durationMs: number;
  /** set when kiln stopped the run for going past one of its {@link ExecLimits} */
  stoppedBy?: 'memory' | 'time' | 'disk';
}

/** Runs processes in containers. */
export interface Executor {
  run(req: ExecRequest): Promise<ExecResult>;
  /** Remove containers (and their bundles) left behind by a kiln process that was killed. */
  cleanup(): Promise<void>;
}
