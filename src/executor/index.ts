export type { ExecMount, ExecNetwork, ExecRequest, ExecResult, Executor, Ulimit } from './types.js';
export type { OciSpec, OciUser, OciMount } from './oci-spec/types.js';
export type { CreateSpecOptions } from './oci-spec/create-spec.js';
export type { ResolveUserOptions } from './oci-spec/user.js';
export { createSpec, withDefaultPath } from './oci-spec/create-spec.js';
export { DEFAULT_CAPABILITIES, MASKED_PATHS, READONLY_PATHS } from './oci-spec/defaults.js';
export { resolveUser } from './oci-spec/user.js';
export type { RuncExecutorOptions } from './runc/runc-executor.js';
export { createRuncExecutor, RuncExecutor } from './runc/runc-executor.js';
