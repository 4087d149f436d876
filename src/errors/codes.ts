/** Error kinds, as in containerd / gRPC status codes. */
export type ErrorKind =
  | 'not-found'
  | 'already-exists'
  | 'invalid-argument'
  | 'failed-precondition'
  | 'unavailable'
  | 'internal';

/** Every user-facing error code kiln can raise, with its kind and a hint. */
export const ERROR_CODES = {
  ERR_KILN_DOCKERFILE_SYNTAX: { kind: 'invalid-argument', hint: 'fix the Dockerfile at the line shown' },
  ERR_KILN_DOCKERFILE_INSTRUCTION: { kind: 'invalid-argument', hint: 'check the instruction reference' },
  ERR_KILN_DOCKERFILE_NOT_FOUND: { kind: 'not-found', hint: 'pass -f FILE or add a Dockerfile to the context' },
  ERR_KILN_CONTEXT_ESCAPE: { kind: 'invalid-argument', hint: 'paths must stay inside the build context' },
  ERR_KILN_CONTEXT_NOT_FOUND: { kind: 'not-found', hint: 'check the path, and that .dockerignore does not exclude it' },
  ERR_KILN_CONTEXT_UNREADABLE: { kind: 'failed-precondition', hint: 'check file permissions, or exclude the path in .dockerignore' },
  ERR_KILN_CONTEXT_NAME: { kind: 'invalid-argument', hint: 'rename the file to valid UTF-8, or exclude it in .dockerignore' },
  ERR_KILN_CONTEXT_CHANGED: { kind: 'failed-precondition', hint: 'a source file changed while the build read it; run the build again' },
  ERR_KILN_VERIFY_STALE: { kind: 'failed-precondition', hint: 'a cache hit differs from a fresh build of the same step: prune the cache (kiln prune -a) and report it' },
  ERR_KILN_IGNORE_PATTERN: { kind: 'invalid-argument', hint: 'fix the pattern in .dockerignore' },
  ERR_KILN_EXEC_FAILED: { kind: 'failed-precondition', hint: 'the command exited with an error; see its output above' },
  ERR_KILN_EXEC_RUNTIME: { kind: 'unavailable', hint: 'is runc installed and are you root?' },
  ERR_KILN_EXEC_START: { kind: 'failed-precondition', hint: 'check that the command exists in the image and the working directory and user are valid' },
  ERR_KILN_EXEC_USER: { kind: 'invalid-argument', hint: 'name a user and group from the image\'s /etc/passwd and /etc/group, or use numeric uid:gid' },
  ERR_KILN_STORE_CORRUPT: { kind: 'internal', hint: 'the blob does not match its digest; it will be rebuilt or re-fetched' },
  ERR_KILN_STORE_NOT_FOUND: { kind: 'not-found', hint: 'the blob is not in the store' },
  ERR_KILN_IMAGE_NOT_FOUND: { kind: 'not-found', hint: 'import, load or pull the image first (kiln images lists them)' },
  ERR_KILN_IMAGE_INVALID: { kind: 'invalid-argument', hint: 'the image or archive is not a valid OCI/Docker image' },
  ERR_KILN_COPY_DEST: { kind: 'failed-precondition', hint: 'check the COPY/ADD destination (a directory needs a trailing /)' },
  ERR_KILN_COPY_OPTION: { kind: 'invalid-argument', hint: 'check the --chmod, --exclude and source patterns of COPY/ADD' },
  ERR_KILN_FETCH_FAILED: { kind: 'unavailable', hint: 'check the URL and that the server is reachable' },
  ERR_KILN_FETCH_CHECKSUM: { kind: 'failed-precondition', hint: 'the downloaded content does not match --checksum' },
  ERR_KILN_ARCHIVE_UNSAFE: { kind: 'invalid-argument', hint: 'archive entries may not leave the destination' },
  ERR_KILN_ARCHIVE_INVALID: { kind: 'invalid-argument', hint: 'the archive is corrupt, truncated or not a tar (gzip, zstd or plain)' },
  ERR_KILN_LAYER_TOOL_MISSING: { kind: 'failed-precondition', hint: "install the tool kiln names (getfattr/setfattr come from Debian's attr package)" },
  ERR_KILN_ARCHIVE_NOT_FOUND: { kind: 'not-found', hint: 'check the path of the archive file or folder' },
  ERR_KILN_ARCHIVE_WRITE: { kind: 'unavailable', hint: 'check that the destination is writable and has free space' },
  ERR_KILN_ARGUMENT: { kind: 'invalid-argument', hint: 'see kiln --help' },
  ERR_KILN_NOT_SUPPORTED: { kind: 'failed-precondition', hint: 'this feature is not supported by kiln yet' },
  ERR_KILN_REGISTRY: { kind: 'unavailable', hint: 'check the registry address and credentials' },
  ERR_KILN_REGISTRY_AUTH: { kind: 'failed-precondition', hint: 'log in (docker login writes ~/.docker/config.json) or pass --registry-auth HOST=USER:PASSWORD' },
  ERR_KILN_REGISTRY_NOT_FOUND: { kind: 'not-found', hint: 'check the repository, tag or digest (and that it was pushed)' },
  ERR_KILN_REGISTRY_DIGEST: { kind: 'failed-precondition', hint: 'the registry sent content that does not match its digest; the copy there is corrupt' },
  ERR_KILN_CACHE_SOURCE: { kind: 'invalid-argument', hint: 'use --cache-from/--cache-to type=registry,ref=REF | type=local,src=DIR|dest=DIR | type=inline' },
  ERR_KILN_CACHE_REGISTRY: { kind: 'invalid-argument', hint: 'use --cache-registry HOST[:PORT]/TEAM/PATH or --cache-registry ref=REF,mounts=false' },
  ERR_KILN_SECRET_NOT_FOUND: { kind: 'not-found', hint: 'pass it with --secret id=ID,src=FILE or env=VAR' },
  ERR_KILN_CACHE_MOUNT_NOT_FOUND: { kind: 'not-found', hint: 'kiln cache ls lists the cache mounts' },
  ERR_KILN_CACHE_MOUNT_IN_USE: { kind: 'failed-precondition', hint: 'wait for the build using it to finish, or pass --force' },
  ERR_KILN_VOLUME_NOT_FOUND: { kind: 'not-found', hint: 'kiln volume ls lists the volumes (kiln run -v NAME:/path creates one)' },
  ERR_KILN_VOLUME_EXISTS: { kind: 'already-exists', hint: 'pick another name, or remove it with kiln volume rm' },
  ERR_KILN_VOLUME_IN_USE: { kind: 'failed-precondition', hint: 'stop the container using it, or pass --force' },
  ERR_KILN_TEMPLATE_INVALID: { kind: 'invalid-argument', hint: 'check the template method and its arguments (each has TSDoc with an example)' },
  ERR_KILN_TEMPLATE_LOAD: { kind: 'invalid-argument', hint: 'a template file must `export default` a Template with a base image (Template().fromPythonImage()...)' },
  ERR_KILN_PLAN_NO_APP: { kind: 'failed-precondition', hint: 'add a Dockerfile, or a dependency manifest kiln knows (requirements.txt, pyproject.toml, package.json, go.mod, Cargo.toml)' },
  ERR_KILN_INPUT_NOT_FILE: { kind: 'invalid-argument', hint: 'a Dockerfile or .dockerignore must be a regular file (not a FIFO, device or directory)' },
  ERR_KILN_INPUT_TOO_LARGE: { kind: 'invalid-argument', hint: 'the file is larger than kiln accepts; split it or remove what is not needed' },
  ERR_KILN_LIMIT_EXCEEDED: { kind: 'invalid-argument', hint: 'the input exceeds a limit kiln enforces (named in the message); reduce it or raise the limit where the message says' },
  ERR_KILN_IMAGE_REF: { kind: 'invalid-argument', hint: 'an image name is [HOST[:PORT]/]path[:tag][@sha256:digest]; path components are lowercase letters, digits and . _ - separators' },
  ERR_KILN_NO_SPACE: { kind: 'unavailable', hint: 'free space: `kiln du` shows what kiln keeps, `kiln prune` (or `kiln prune -a -f`) removes it' },
  ERR_KILN_DB_BUSY: { kind: 'unavailable', hint: 'another kiln process holds the database; wait for it to finish and retry' },
  ERR_KILN_DB_IO: { kind: 'unavailable', hint: 'the state directory\'s disk failed or is full; check `df` and `kiln du`, then `kiln prune`' },
  ERR_KILN_INTERRUPTED: { kind: 'unavailable', hint: 'the build was stopped by a signal; run it again (finished steps are cached)' },
  ERR_KILN_START_CHECK: { kind: 'failed-precondition', hint: 'the template\'s start command must come up in the built image: fix it or its ready check (run the image with kiln run to try it), or raise the timeout' },
  ERR_KILN_STATE_ROOT: { kind: 'failed-precondition', hint: 'run kiln as the owner of the state directory (builds need root), or pick a directory you can write with --root DIR or KILN_ROOT' },
  ERR_KILN_INTERNAL: { kind: 'internal', hint: 'this is a bug in kiln' },
} as const satisfies Record<string, { kind: ErrorKind; hint: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;
