import type { TemplateData } from './types.js';

/** The context paths a template reads: its copy() sources and pip requirements files. */
export function templateReads(data: TemplateData): string[] {
  const out = new Set<string>();
  for (const s of data.steps) {
    if (s.type === 'copy') for (const src of s.sources) out.add(src.replace(/^\.\/+/, '').replace(/\/+$/, '') || '.');
    if (s.type === 'pipInstall' && s.requirements) out.add(s.requirements.replace(/^\.\/+/, ''));
  }
  return [...out];
}
