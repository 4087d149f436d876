/**
 * Instruction flags (`--from=`, `--mount=`...), checked the way BuildKit's BFlags does.
 * @internal
 */
import { InstructionProblem } from './problem.js';
import { withSuggestion } from './suggest.js';

type FlagType = 'bool' | 'string' | 'strings';

/** One declared flag and the value it ended up with. */
export interface Flag {
  name: string;
  type: FlagType;
  /** bool flags: 'true' or 'false'; string flags: the value or the default */
  value: string;
  /** strings flags: every value given */
  values: string[];
}

/** The flags written on one instruction, checked against the declared ones by `parse()`. */
export class BFlags {
  private readonly declared = new Map<string, Flag>();
  private readonly usedNames: string[] = [];

  constructor(private readonly args: readonly string[]) {}

  addBool(name: string, def = false): Flag {
    return this.add({ name, type: 'bool', value: def ? 'true' : 'false', values: [] });
  }

  addString(name: string, def = ''): Flag {
    return this.add({ name, type: 'string', value: def, values: [] });
  }

  addStrings(name: string): Flag {
    return this.add({ name, type: 'strings', value: '', values: [] });
  }

  private add(flag: Flag): Flag {
    if (this.declared.has(flag.name)) throw new Error(`Duplicate flag defined: ${flag.name}`);
    this.declared.set(flag.name, flag);
    return flag;
  }

  isUsed(name: string): boolean {
    return this.usedNames.includes(name);
  }

  /** Names of the flags given, in order of first use. */
  used(): string[] {
    return [...this.usedNames];
  }

  /** Check the written flags and fill in values. Throws InstructionProblem with BuildKit's messages. */
  parse(): void {
    for (const a of this.args) {
      if (a === '--') return;
      if (!a.startsWith('--')) throw new InstructionProblem(`arg should start with -- : ${a}`);
      const eq = a.indexOf('=');
      const flagName = eq < 0 ? a : a.slice(0, eq);
      const value = eq < 0 ? '' : a.slice(eq + 1);
      const hasValue = eq >= 0;
      const name = flagName.slice(2);
      const flag = this.declared.get(name);
      if (!flag) {
        throw new InstructionProblem(withSuggestion(`unknown flag: ${flagName}`, {
          value: name, options: [...this.declared.keys()], caseSensitive: true,
        }));
      }
      if (this.usedNames.includes(name)) {
        if (flag.type !== 'strings') throw new InstructionProblem(`duplicate flag specified: ${flagName}`);
      } else {
        this.usedNames.push(name);
      }
      setFlagValue(flag, { flagName, value, hasValue });
    }
  }
}

function setFlagValue(flag: Flag, w: { flagName: string; value: string; hasValue: boolean }): void {
  if (flag.type === 'bool') {
    if (w.hasValue && w.value === '') throw new InstructionProblem(`missing a value on flag: ${w.flagName}`);
    const v = w.value.toLowerCase();
    if (v === 'true' || v === '') flag.value = 'true';
    else if (v === 'false') flag.value = 'false';
    else throw new InstructionProblem(`expecting boolean value for flag ${w.flagName}, not: ${w.value}`);
    return;
  }
  if (!w.hasValue) throw new InstructionProblem(`missing a value on flag: ${w.flagName}`);
  if (flag.type === 'string') flag.value = w.value;
  else flag.values.push(w.value);
}
