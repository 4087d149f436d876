import { BuildError } from '../errors/index.js';
import { ITEM_TYPES, parseItemType, type ItemType, type PruneFilters } from './plan.js';
import { parseDuration } from './units.js';

/** `--filter` values (`type=cache-mount`, `id=PREFIX`, `until=24h`; repeatable) as filters. `image` only for du. */
export function parseFilters(specs: string[], opts: { allowImage?: boolean } = {}): PruneFilters {
  const out: { types?: Array<ItemType | 'image'>; ids?: string[]; untilMs?: number } = {};
  for (const spec of specs) {
    const m = /^\s*([a-z-]+)\s*(!?=)\s*(.*)$/i.exec(spec);
    if (!m || m[2] !== '=') throw new BuildError('ERR_KILN_ARGUMENT', `--filter: expected KEY=VALUE, got "${spec}"`, { hint: 'filters: type=TYPE, id=PREFIX, until=DURATION' });
    const key = m[1]!.toLowerCase();
    const value = m[3]!.trim();
    if (key === 'type') {
      const t = value === 'image' && opts.allowImage ? 'image' : parseItemType(value);
      if (!t) {
        const known = [...ITEM_TYPES, ...(opts.allowImage ? ['image'] : [])].join(', ');
        throw new BuildError('ERR_KILN_ARGUMENT', `--filter type=${value}: unknown type`, { hint: `types: ${known}` });
      }
      (out.types ??= []).push(t);
    } else if (key === 'id') (out.ids ??= []).push(value);
    else if (key === 'until' || key === 'unused-for') out.untilMs = parseDuration(value, `--filter ${key}`);
    else throw new BuildError('ERR_KILN_ARGUMENT', `--filter: unknown key "${key}"`, { hint: 'filters: type=TYPE, id=PREFIX, until=DURATION' });
  }
  return out;
}
