import type { Command } from 'commander';
import { BuildError } from '../../errors/index.js';

/** Every command path with its flags, from the command tree itself (so completion never lags behind the CLI). */
function table(cmd: Command, prefix: string[] = []): Array<{ path: string; words: string[] }> {
  // visible ones only: not the internal container-supervise
  const subs = cmd.createHelp().visibleCommands(cmd).filter((c) => c.name() !== 'help');
  const flags = cmd.options.flatMap((o) => [o.short, o.long].filter((x): x is string => typeof x === 'string'));
  const rows = [{ path: prefix.join(' '), words: [...subs.map((c) => c.name()), ...flags, '--help'] }];
  for (const c of subs) rows.push(...table(c, [...prefix, c.name()]));
  return rows;
}

function bashScript(program: Command): string {
  const cases = table(program).map((r) => `    '${r.path}') words='${r.words.join(' ')}' ;;`).join('\n');
  return `# kiln bash completion: source <(kiln completion bash)
_kiln() {
  local cur path i w words
  cur="\${COMP_WORDS[COMP_CWORD]}"
  path=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$w" in -*) continue ;; esac
    case " $(_kiln_words "\${path# }") " in *" $w "*) path="$path $w" ;; esac
  done
  words="$(_kiln_words "\${path# }")"
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
  [ \${#COMPREPLY[@]} -eq 0 ] && COMPREPLY=($(compgen -f -- "$cur"))
  return 0
}
_kiln_words() {
  local words=''
  case "$1" in
${cases}
  esac
  printf '%s' "$words"
}
complete -F _kiln kiln
`;
}

function zshScript(program: Command): string {
  return `#compdef kiln\n# kiln zsh completion: source <(kiln completion zsh)\nautoload -U +X bashcompinit && bashcompinit\n${bashScript(program)}`;
}

/** `kiln completion bash|zsh`: a completion script for the shell, as `docker completion` prints. */
export function registerCompletion(program: Command): void {
  program
    .command('completion')
    .description('Print a shell completion script: source <(kiln completion bash)')
    .argument('<shell>', 'bash or zsh')
    .action((shell: string) => {
      if (shell === 'bash') process.stdout.write(bashScript(program));
      else if (shell === 'zsh') process.stdout.write(zshScript(program));
      else throw new BuildError('ERR_KILN_ARGUMENT', `completion: "${shell}" is not a supported shell (bash, zsh)`);
    });
}
