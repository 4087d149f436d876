import { DockerfileError, type SourceLocation } from '../../../errors/index.js';
import type { MountDef } from '../../../graph/index.js';

/** Parse one `RUN --mount=` value (CSV of key=value) with BuildKit's defaults. */
export function parseMount(value: string, loc: SourceLocation): { def: MountDef; fromStage?: string } {
  const fields = splitCsv(value);
  const def: MountDef = { type: 'bind', target: '' };
  let fromStage: string | undefined;
  let typeSet = false;
  for (const f of fields) {
    const eq = f.indexOf('=');
    const k = (eq < 0 ? f : f.slice(0, eq)).trim().toLowerCase();
    const v = eq < 0 ? undefined : f.slice(eq + 1);
    const bool = (): boolean => v === undefined || v === '' || v.toLowerCase() === 'true' || v === '1';
    switch (k) {
      case 'type':
        if (!['bind', 'cache', 'tmpfs', 'secret', 'ssh'].includes(v ?? '')) throw new DockerfileError(`unsupported mount type "${v}"`, loc);
        def.type = v as MountDef['type'];
        typeSet = true;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        def.target = v ?? '';
        break;
      case 'source':
      case 'src':
        def.source = v ?? '';
        break;
      case 'from':
        fromStage = v ?? '';
        break;
      case 'id':
        def.id = v ?? '';
        break;
      case 'ro':
      case 'readonly':
        def.readonly = bool();
        break;
      case 'rw':
      case 'readwrite':
        def.readonly = !bool();
        break;
      case 'sharing':
        if (!['shared', 'private', 'locked'].includes(v ?? '')) throw new DockerfileError(`unsupported sharing value "${v}"`, loc);
        def.sharing = v as MountDef['sharing'];
        break;
      case 'mode':
        if (!/^[0-7]+$/.test(v ?? '')) throw new DockerfileError(`invalid mount mode "${v}"`, loc);
        def.mode = parseInt(v!, 8);
        break;
      case 'uid':
        def.uid = toInt(v, k, loc);
        break;
      case 'gid':
        def.gid = toInt(v, k, loc);
        break;
      case 'size':
        def.size = parseSize(v ?? '', loc);
        break;
      case 'required':
        def.required = bool();
        break;
      case 'env':
        def.env = v ?? '';
        break;
      default:
        throw new DockerfileError(`unexpected key "${k}" in --mount=${value}`, loc);
    }
  }
  if (!typeSet) def.type = 'bind';
  if (def.type === 'ssh') {
    throw new DockerfileError('RUN --mount=type=ssh is not supported by kiln', loc, { code: 'ERR_KILN_NOT_SUPPORTED' });
  }
  if (def.type === 'secret') {
    if (!def.id && def.target) def.id = def.target.split('/').pop() ?? '';
    if (!def.id) throw new DockerfileError('secret mount needs id= or target=', loc);
    if (!def.target && !def.env) def.target = `/run/secrets/${def.id}`;
  }
  if (!def.target && def.type !== 'secret') throw new DockerfileError(`mount type=${def.type} needs target=`, loc);
  if (def.type === 'cache') {
    def.id = def.id || def.target;
    def.sharing = def.sharing ?? 'shared';
  }
  if (def.type === 'bind' && def.readonly === undefined) def.readonly = true;
  return fromStage !== undefined ? { def, fromStage } : { def };
}

function splitCsv(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let q: string | null = null;
  for (const ch of s) {
    if (q) {
      if (ch === q) q = null;
      else cur += ch;
    } else if (ch === '"' || ch === "'") q = ch;
    else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur !== '') out.push(cur);
  return out.filter((x) => x.trim() !== '');
}

function toInt(v: string | undefined, k: string, loc: SourceLocation): number {
  if (!/^\d+$/.test(v ?? '')) throw new DockerfileError(`invalid ${k} "${v}" in --mount`, loc);
  return Number(v);
}

function parseSize(v: string, loc: SourceLocation): number {
  const m = /^(\d+)([kmg]?)b?$/i.exec(v.trim());
  if (!m) throw new DockerfileError(`invalid size "${v}" in --mount`, loc);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(m[1]) * mult;
}
