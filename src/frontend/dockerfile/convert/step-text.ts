import { DockerfileError } from '../../../errors/index.js';
import { canonicalJson } from '../../../oci/index.js';
import { parse } from '../parser/index.js';
import { parseInstruction, renderCommand, type Command } from '../instructions/index.js';
import type { ProgramStep, ProgramStepText } from './types.js';

/** Do two records say the same thing (their locations aside)? */
export function sameCommand(a: Command, b: Command): boolean {
  const { location: _a, ...ra } = a;
  const { location: _b, ...rb } = b;
  return canonicalJson(ra) === canonicalJson(rb);
}

/**
 * A program step as Dockerfile text, for the local hand-off. Undefined when the text would not read back as the same
 * records ({@link programStepFromText} is checked here, so a step only crosses as text when the round trip is exact),
 * or when its records name different places; the caller then builds in its own process.
 *
 * @example
 * const wire = programStepText({ commands: [makeRun({ shell: 'echo hi', at })] }); // { instructions: 'RUN echo hi', location }
 */
export function programStepText(step: ProgramStep): ProgramStepText | undefined {
  const first = step.commands[0]?.location;
  const location = first?.file !== undefined ? { file: first.file, line: first.startLine } : undefined;
  const same = step.commands.every((c) => c.location.file === location?.file && (location === undefined || c.location.startLine === location.line));
  if (!same) return undefined;
  const wire: ProgramStepText = { instructions: step.commands.map(renderCommand).join('\n'), ...(location ? { location } : {}), ...(step.noCache ? { noCache: true } : {}) };
  let back: ProgramStep;
  try {
    back = programStepFromText(wire);
  } catch {
    return undefined;
  }
  if (back.commands.length !== step.commands.length || back.commands.some((c, i) => !sameCommand(c, step.commands[i]!))) return undefined;
  return wire;
}

/**
 * A program step read back from its text: its instructions parsed on their own (without text around them), each
 * record located at the step's file and line. A bad step is a DockerfileError at that place.
 */
export function programStepFromText(wire: ProgramStepText, file = 'Dockerfile'): ProgramStep {
  const where = wire.location ?? { file, line: 0 };
  let nodes;
  try {
    nodes = parse(wire.instructions, { file: where.file }).ast.children;
  } catch (err) {
    throw new DockerfileError(`step does not parse: ${(err as Error).message}`, where, { cause: err });
  }
  const commands = nodes.map((node): Command => {
    const ins = parseInstruction(node, { file: where.file });
    if (ins.name === 'from') throw new DockerfileError('a step cannot start a stage (FROM)', where);
    return wire.location ? { ...ins, location: { file: where.file, startLine: where.line, endLine: where.line } } : ins;
  });
  return { commands, ...(wire.noCache ? { noCache: true } : {}) };
}
