/**
 * Whole-file entry: parse the text, turn every node into an instruction, and group them into
 * global ARGs and stages (BuildKit's instructions.Parse).
 */
import { DockerfileError } from '../../../errors/index.js';
import { parse } from '../parser/index.js';
import type { ParseResult } from '../parser/index.js';
import { docComment, parseInstruction } from './parse-instruction.js';
import type { ArgCommand, ParsedDockerfile, Stage } from './types.js';

/** Options of parseDockerfile. */
export interface ParseDockerfileOptions {
  /** File name used in error messages. Default `Dockerfile`. */
  file?: string;
}

/**
 * Group an already parsed syntax tree into global ARGs and stages.
 * Throws DockerfileError for a bad instruction or an instruction before the first FROM.
 */
export function parseDockerfileFromResult(result: ParseResult, opts: ParseDockerfileOptions = {}): ParsedDockerfile {
  const file = opts.file ?? 'Dockerfile';
  const metaArgs: ArgCommand[] = [];
  const stages: Stage[] = [];
  for (const node of result.ast.children) {
    const ins = parseInstruction(node, { file });
    if (ins.name === 'from') {
      const stage: Stage = { name: ins.stageName, index: stages.length, from: ins, commands: [] };
      const doc = docComment(node.prevComment ?? [], ins.stageName);
      if (doc !== '') stage.comment = doc;
      stages.push(stage);
      continue;
    }
    const current = stages[stages.length - 1];
    if (current) {
      current.commands.push(ins);
    } else if (ins.name === 'arg') {
      metaArgs.push(ins);
    } else {
      throw new DockerfileError('no build stage in current context', { file, line: node.startLine },
        { code: 'ERR_KILN_DOCKERFILE_INSTRUCTION' });
    }
  }
  return {
    metaArgs,
    stages,
    escapeToken: result.escapeToken,
    directives: result.directives,
    warnings: result.warnings,
  };
}

/**
 * Parse Dockerfile text into global ARGs and stages of typed, unexpanded instructions. Pure: no I/O.
 * Every error is a DockerfileError whose message reads `FILE:LINE: problem`.
 * @example
 * const df = parseDockerfile('ARG V=1\nFROM alpine AS base\nRUN echo $V\n');
 * df.metaArgs[0].args[0] // { key: 'V', value: '1' }
 * df.stages[0].name      // 'base'
 */
export function parseDockerfile(text: string, opts: ParseDockerfileOptions = {}): ParsedDockerfile {
  return parseDockerfileFromResult(parse(text, { file: opts.file }), opts);
}
