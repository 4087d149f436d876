/** The subset of the OCI runtime-spec `config.json` kiln writes (runtime-spec 1.0.2, Linux). */
export interface OciSpec {
  ociVersion: string;
  process: OciProcess;
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: OciMount[];
  linux: OciLinux;
}

export interface OciProcess {
  terminal: boolean;
  user: OciUser;
  args: string[];
  env: string[];
  cwd: string;
  capabilities: { bounding: string[]; effective: string[]; permitted: string[] };
  rlimits: { type: string; hard: number; soft: number }[];
  noNewPrivileges: boolean;
}

/** Numeric identity of the container process. */
export interface OciUser {
  uid: number;
  gid: number;
  additionalGids: number[];
}

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

export interface OciLinux {
  namespaces: { type: 'pid' | 'network' | 'ipc' | 'uts' | 'mount'; path?: string }[];
  resources: OciResources;
  cgroupsPath?: string;
  maskedPaths: string[];
  readonlyPaths: string[];
  seccomp?: OciSeccomp;
}

/** Resource limits runc applies through cgroups. */
export interface OciResources {
  devices: { allow: boolean; access: string }[];
  memory?: { limit: number; swap: number };
  pids?: { limit: number };
  cpu?: { shares: number };
}

export interface OciSeccomp {
  defaultAction: 'SCMP_ACT_ALLOW' | 'SCMP_ACT_ERRNO';
  architectures: string[];
  syscalls: OciSyscallRule[];
}

export interface OciSyscallRule {
  names: string[];
  action: 'SCMP_ACT_ERRNO' | 'SCMP_ACT_ALLOW';
  errnoRet?: number;
  args?: { index: number; value: number; valueTwo: number; op: 'SCMP_CMP_MASKED_EQ' | 'SCMP_CMP_EQ' }[];
}
