/** Names the first input that differs between two cache-key input records (what the solver stores per key). */

export interface KeyInputsRecord {
  version?: string;
  parent?: string;
  op?: Record<string, unknown>;
  deps?: string[];
  content?: { digest?: string; files?: Array<[string, string, number]>; fileCount?: number } & Record<string, unknown>;
  parentKey?: string;
  parentCached?: boolean;
}

export interface CompareContext {
  /** build args of the older and the newer build (secret-looking names already redacted) */
  argsBefore: Record<string, string>;
  argsAfter: Record<string, string>;
  /** the step's parent is the FROM image */
  parentIsSource: boolean;
  /** progress name of the parent step */
  parentName?: string;
}

const SECRET_NAME = /secret|token|password|passwd|key|credential/i;

const short = (d: string | undefined): string => (d ? (d.startsWith('sha256:') ? `sha256:${d.slice(7, 19)}` : d.length > 24 ? `${d.slice(0, 19)}…` : d) : '(none)');

function show(name: string, v: string | undefined): string {
  if (v === undefined) return '(unset)';
  if (SECRET_NAME.test(name) || v === '***') return '(value hidden)';
  // build-arg values are recorded as their digest only (cache keys v3)
  if (/^sha256:[0-9a-f]{64}$/.test(v)) return short(v);
  return JSON.stringify(v);
}

function envMap(env: unknown): Map<string, string> {
  const m = new Map<string, string>();
  if (!Array.isArray(env)) return m;
  for (const e of env as string[]) {
    const i = e.indexOf('=');
    if (i < 0) m.set(e, '');
    else m.set(e.slice(0, i), e.slice(i + 1));
  }
  return m;
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** First env entry that differs, as a reason (build arg when either build passed that name as --build-arg). */
function envReason(before: unknown, after: unknown, ctx: CompareContext, kind: 'run' | 'env'): string | undefined {
  const a = envMap(before);
  const b = envMap(after);
  for (const name of new Set([...b.keys(), ...a.keys()])) {
    if (a.get(name) === b.get(name)) continue;
    const isArg = name in ctx.argsAfter || name in ctx.argsBefore;
    const what = isArg ? `build arg ${name}` : kind === 'run' ? `env ${name}` : `ENV ${name}`;
    const from = isArg && name in ctx.argsBefore ? ctx.argsBefore[name] : a.get(name);
    const to = isArg && name in ctx.argsAfter ? ctx.argsAfter[name] : b.get(name);
    return `${what} changed: ${show(name, from)} → ${show(name, to)}`;
  }
  return undefined;
}

const FIELD_NAMES: Record<string, string> = {
  args: 'the command changed',
  cwd: 'WORKDIR changed',
  user: 'USER changed',
  network: 'RUN --network changed',
  security: 'RUN --security changed',
  mounts: 'RUN --mount options changed',
  sources: 'COPY/ADD sources changed',
  inline: 'heredoc content changed',
  dest: 'COPY/ADD destination changed',
  workdir: 'WORKDIR changed',
  chown: 'COPY --chown changed',
  chmod: 'COPY --chmod changed',
  excludes: 'COPY --exclude changed',
  parents: 'COPY --parents changed',
  link: 'COPY --link changed',
  checksum: 'ADD --checksum changed',
  from: 'COPY --from changed',
  path: 'WORKDIR changed',
  ref: 'base image reference changed',
};

function opReason(before: Record<string, unknown>, after: Record<string, unknown>, ctx: CompareContext): string | undefined {
  if (before.type !== after.type) return `the instruction changed (${String(before.type)} → ${String(after.type)})`;
  if (after.type === 'exec' && !same(before.env, after.env)) return envReason(before.env, after.env, ctx, 'run');
  if (after.type === 'meta') {
    const ca = (before.change ?? {}) as Record<string, unknown>;
    const cb = (after.change ?? {}) as Record<string, unknown>;
    if (cb.env || ca.env) {
      const r = envReason(Object.entries((ca.env ?? {}) as Record<string, string>).map(([k, v]) => `${k}=${v}`), Object.entries((cb.env ?? {}) as Record<string, string>).map(([k, v]) => `${k}=${v}`), ctx, 'env');
      if (r) return r;
    }
    const k = [...new Set([...Object.keys(cb), ...Object.keys(ca)])].find((x) => !same(ca[x], cb[x]));
    if (k) return `${k.toUpperCase()} changed`;
  }
  for (const k of new Set([...Object.keys(after), ...Object.keys(before)])) {
    if (same(before[k], after[k])) continue;
    return FIELD_NAMES[k] ?? `${k} changed`;
  }
  return undefined;
}

function modeText(m: number): string {
  return (m & 0o7777).toString(8).padStart(4, '0');
}

function contentReason(before: KeyInputsRecord['content'], after: KeyInputsRecord['content']): string | undefined {
  const a = before ?? {};
  const b = after ?? {};
  if (same(a.digest, b.digest) && same(a.files, b.files)) return undefined;
  for (const k of new Set([...Object.keys(b), ...Object.keys(a)])) {
    if (k === 'digest' || k === 'files' || k === 'fileCount' || same(a[k], b[k])) continue;
    return k === 'sourceDateEpoch' ? `SOURCE_DATE_EPOCH changed: ${String(a[k] ?? '(unset)')} → ${String(b[k] ?? '(unset)')}` : `${k} changed`;
  }
  if (!Array.isArray(a.files) || !Array.isArray(b.files)) {
    return `context files changed (${b.fileCount ?? b.files?.length ?? '?'} files; too many to list which)`;
  }
  const old = new Map(a.files.map((f) => [f[0], f]));
  for (const f of b.files) {
    const o = old.get(f[0]);
    if (!o) return `file added: ${f[0]}`;
    if (o[1] !== f[1]) return `file content changed: ${f[0]} (${short(o[1])} → ${short(f[1])})`;
    if (o[2] !== f[2]) return `file mode changed: ${f[0]} (${modeText(o[2])} → ${modeText(f[2])})`;
  }
  const now = new Set(b.files.map((f) => f[0]));
  const gone = a.files.find((f) => !now.has(f[0]));
  if (gone) return `file removed: ${gone[0]}`;
  return 'context files changed';
}

/**
 * The first input that differs between the inputs an older record was keyed on and the current ones, as one line:
 * base image, parent step, stage dependency, build arg / env / other instruction field, then files read from the
 * context (added, content, mode, removed). Undefined when the inputs are the same.
 *
 * @example
 * compareInputs(oldInputs, newInputs, { argsBefore: {}, argsAfter: {}, parentIsSource: false })
 * // 'file content changed: app/main.txt (sha256:1a2b3c4d5e6f → sha256:99aa00bb11cc)'
 */
export function compareInputs(before: KeyInputsRecord, after: KeyInputsRecord, ctx: CompareContext): string | undefined {
  if (before.version !== after.version) return `the cache key format changed (${before.version ?? '?'} → ${after.version ?? '?'})`;
  if (before.parent !== after.parent) {
    if (ctx.parentIsSource) return `base image digest changed: ${short(before.parent)} → ${short(after.parent)}`;
    const name = ctx.parentName ? `: ${ctx.parentName}` : '';
    return after.parentCached === false ? `parent step was rebuilt${name}` : `parent step changed${name}`;
  }
  if (!same(before.deps ?? [], after.deps ?? [])) return 'a stage or image it reads from (COPY --from, RUN --mount from=) changed';
  const op = opReason(before.op ?? {}, after.op ?? {}, ctx);
  if (op) return op;
  return contentReason(before.content, after.content);
}
