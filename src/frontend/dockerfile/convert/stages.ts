import { DockerfileError } from '../../../errors/index.js';
import type { ImageConfig } from '../../../oci/index.js';
import { parseDockerfile, type Command, type Stage } from '../instructions/index.js';
import type { ShellLexer } from '../shell/index.js';

/** Most instructions a Dockerfile may have (conversion and solving are linear in it; this bounds the work). */
export const MAX_INSTRUCTIONS = 100_000;

export function checkInstructionLimit(stages: Stage[], file: string): void {
  let n = 0;
  for (const st of stages) {
    n += 1 + st.commands.length;
    if (n > MAX_INSTRUCTIONS) {
      const over = st.commands[st.commands.length - (n - MAX_INSTRUCTIONS)]; // undefined when it is the FROM
      throw new DockerfileError(`too many instructions: the limit is ${MAX_INSTRUCTIONS} (MAX_INSTRUCTIONS) per Dockerfile`, { file, line: over?.location.startLine ?? st.from.location.startLine }, { code: 'ERR_KILN_LIMIT_EXCEEDED' });
    }
  }
}

/** Index of the `--target` stage (the last stage without one). */
export function resolveTarget(stages: Stage[], target: string | undefined, file: string): number {
  if (!target) return stages.length - 1;
  const i = stages.findIndex((s) => s.name === target.toLowerCase());
  if (i < 0) throw new DockerfileError(`target stage "${target}" could not be found`, { file, line: 1 }, { code: 'ERR_KILN_ARGUMENT' });
  return i;
}

/** Stage names, refusing a name given twice. */
export function stageNames(stages: Stage[], file: string): Map<string, number> {
  const byName = new Map<string, number>();
  stages.forEach((s, i) => {
    if (!s.name) return;
    if (byName.has(s.name)) throw new DockerfileError(`duplicate stage name "${s.name}"`, { file, line: s.from.location.startLine });
    byName.set(s.name, i);
  });
  return byName;
}

/** The earlier stage `ref` names (by name or index), or undefined when it names an image. */
export function stageIndex(ref: string, byName: Map<string, number>, current: number): number | undefined {
  const n = byName.get(ref.toLowerCase());
  if (n !== undefined && n < current) return n;
  if (/^\d+$/.test(ref) && Number(ref) < current) return Number(ref);
  return undefined;
}

/** Stages the target needs (FROM, COPY --from, RUN --mount from), found by name. */
export function neededStages(stages: Stage[], target: number, byName: Map<string, number>, globalArgs: Map<string, string | undefined>, lex: ShellLexer, replaced: (s: Stage) => boolean = () => false): Set<number> {
  const need = new Set<number>();
  const visit = (i: number): void => {
    if (need.has(i)) return;
    need.add(i);
    const s = stages[i]!;
    if (replaced(s)) return; // a named context stands in for it: what it would read is not needed
    let base = s.from.image;
    try {
      base = lex.processWord(s.from.image, (n) => globalArgs.get(n));
    } catch {
      /* reported during conversion */
    }
    const refs = [base];
    for (const c of s.commands) {
      if ((c.name === 'copy' || c.name === 'add') && c.from) refs.push(c.from);
      if (c.name === 'run') for (const m of c.mounts) {
        const f = /(?:^|,)from=([^,]+)/.exec(m);
        if (f) refs.push(f[1]!);
      }
    }
    for (const r of refs) {
      const idx = stageIndex(r, byName, i);
      if (idx !== undefined) visit(idx);
    }
  };
  visit(target);
  return need;
}

/** A base image's ONBUILD triggers as instructions, placed at the FROM line. */
export function onbuildTriggers(config: ImageConfig, file: string, line: number): Command[] {
  const triggers = config.config.OnBuild ?? [];
  const out: Command[] = [];
  for (const t of triggers) {
    const parsed = parseDockerfile(`FROM scratch\n${t}\n`, { file: `${file} (ONBUILD)` });
    for (const c of parsed.stages[0]?.commands ?? []) {
      out.push({ ...c, location: { startLine: line, endLine: line } } as Command);
    }
  }
  return out;
}
