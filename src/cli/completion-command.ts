/**
 * `qmpkit completion bash|zsh`: a shell completion script, made from the command definitions
 * themselves (commander's), so that it never lists a command or an option the program lacks.
 *
 * What it completes: command and subcommand names, each command's options, the values of options
 * that take a fixed set (`--format json|text` style choices), and files for the rest (targets are
 * socket paths). `sim` takes QEMU's own options, which are not commander's: it completes files.
 *
 * @module
 */
import { Argument, type Command, type Option } from "commander";
import type { CommandContext } from "./context.js";

/** One command's completion facts. */
interface CommandFacts {
  /** `events`, or `schema check` for a subcommand. */
  readonly path: string;
  readonly description: string;
  readonly options: readonly Option[];
  readonly subcommands: readonly string[];
  /** The fixed values of the command's arguments (`completion bash|zsh`). */
  readonly choices: readonly string[];
}

function factsOf(program: Command): CommandFacts[] {
  const out: CommandFacts[] = [];
  const walk = (cmd: Command, path: string) => {
    for (const sub of cmd.commands) {
      const name = `${path}${path ? " " : ""}${sub.name()}`;
      out.push({
        path: name,
        description: sub.description(),
        options: sub.options.filter((o) => !o.hidden),
        subcommands: sub.commands.map((c) => c.name()),
        choices: sub.registeredArguments.flatMap((a) => a.argChoices ?? []),
      });
      walk(sub, name);
    }
  };
  walk(program, "");
  return out;
}

/** What "$cmdpath $word" reads when `word` enters `path`: ` events`, `schema check`. */
function casePattern(path: string): string {
  return path.includes(" ") ? path : ` ${path}`;
}

function flagsOf(options: readonly Option[]): string[] {
  return options.flatMap((o) => [o.long, o.short].filter((f): f is string => f !== undefined));
}

/** The options that take a value, which the next word is (not a command or an option). */
function valueFlags(options: readonly Option[]): string[] {
  return options
    .filter((o) => o.required || o.optional)
    .flatMap((o) => [o.long, o.short].filter((f): f is string => f !== undefined));
}

function quote(words: readonly string[]): string {
  return words.join(" ");
}

/** A bash completion script (`source <(qmpkit completion bash)`). */
export function bashCompletion(program: Command): string {
  const facts = factsOf(program);
  const top = program.commands.map((c) => c.name());
  const globalFlags = [...new Set([...flagsOf(program.options), "--help"])];
  const cases = facts
    .map((f) => {
      const flags = [...flagsOf(f.options), "--help"];
      const choices = f.options
        .filter((o) => o.argChoices !== undefined && o.long !== undefined)
        .map(
          (o) =>
            `        ${o.long}) COMPREPLY=($(compgen -W "${quote(o.argChoices!)}" -- "$cur")); return ;;`,
        )
        .join("\n");
      const values = valueFlags(f.options);
      return [
        `    "${f.path}")`,
        "      case $prev in",
        ...(choices ? [choices] : []),
        ...(values.length > 0
          ? [`        ${values.join("|")}) COMPREPLY=($(compgen -f -- "$cur")); return ;;`]
          : []),
        "      esac",
        `      words="${quote([...f.subcommands, ...f.choices, ...flags])}"${f.subcommands.length + f.choices.length === 0 ? " files=yes" : ""} ;;`,
      ].join("\n");
    })
    .join("\n");
  return `# bash completion for qmpkit, made by \`qmpkit completion bash\`.
# Use: source <(qmpkit completion bash)   (or save it under ~/.local/share/bash-completion/completions/qmpkit)
_qmpkit() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]}
  local cmdpath="" words files="" i w
  # The command path: the words before the cursor that name commands and subcommands.
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    case "$cmdpath $w" in
${facts.map((f) => `      "${casePattern(f.path)}") cmdpath="${f.path}" ;;`).join("\n")}
    esac
  done
  case "$cmdpath" in
    "") words="${quote([...top, ...globalFlags])}" ;;
    "sim") COMPREPLY=($(compgen -f -- "$cur")); return ;;
${cases}
  esac
  # Targets are socket paths: files, after the command and its options.
  if [[ -z $files || $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$words" -- "$cur") $(compgen -f -- "$cur"))
  fi
}
complete -o default -F _qmpkit qmpkit
`;
}

function zshQuote(text: string): string {
  return text
    .replace(/'/g, "'\\''")
    .replace(/:/g, "\\:")
    .replace(/\[/g, "\\[")
    .replace(/\]/g, "\\]");
}

/** A zsh completion script (`source <(qmpkit completion zsh)`, or saved as `_qmpkit` on $fpath). */
export function zshCompletion(program: Command): string {
  const facts = factsOf(program);
  const describe = (list: readonly { name: string; description: string }[]) =>
    list.map((c) => `'${zshQuote(c.name)}:${zshQuote(c.description)}'`).join(" ");
  const specs = (options: readonly Option[]) =>
    options
      .map((o) => {
        const names = [o.long, o.short].filter((f): f is string => f !== undefined);
        const flag = names.length > 1 ? `{${names.join(",")}}` : names[0]!;
        const takes = o.required || o.optional;
        const action = o.argChoices ? `(${o.argChoices.join(" ")})` : "_files";
        const spec = `[${zshQuote(o.description)}]${takes ? `:value:${action}` : ""}'`;
        return names.length > 1 ? `'(${names.join(" ")})'${flag}'${spec}` : `'${flag}${spec}`;
      })
      .join(" ");
  const cases = facts
    .filter((f) => f.path !== "sim")
    .map((f) => {
      const subs = program.commands
        .find((c) => c.name() === f.path.split(" ")[0])
        ?.commands.filter(() => f.subcommands.length > 0)
        .map((c) => ({ name: c.name(), description: c.description() }));
      const then =
        f.subcommands.length > 0
          ? `_describe -t commands 'subcommand' "(${describe(subs ?? [])})"`
          : f.choices.length > 0
            ? `_values 'value' ${f.choices.join(" ")}`
            : `_arguments -s ${specs(f.options)} '*:target:_files'`;
      return `    '${f.path}') ${then} ;;`;
    })
    .join("\n");
  const top = program.commands.map((c) => ({ name: c.name(), description: c.description() }));
  return `#compdef qmpkit
# zsh completion for qmpkit, made by \`qmpkit completion zsh\`.
# Use: source <(qmpkit completion zsh)   (or save it as _qmpkit in a directory of $fpath)
_qmpkit() {
  # (not "path": zsh ties that name to $PATH)
  local cmdpath="" w
  for w in \${words[2,CURRENT-1]}; do
    case "$cmdpath $w" in
${facts.map((f) => `      '${casePattern(f.path)}') cmdpath='${f.path}' ;;`).join("\n")}
    esac
  done
  case "$cmdpath" in
    '') _describe -t commands 'qmpkit command' "(${describe(top)})" ;;
    'sim') _files ;;
${cases}
  esac
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _qmpkit "$@"
else
  compdef _qmpkit qmpkit
fi
`;
}

export function registerCompletionCommand(program: Command, ctx: CommandContext): void {
  program
    .command("completion")
    .description("print a shell completion script (bash or zsh)")
    .addArgument(new Argument("<shell>", "bash or zsh").choices(["bash", "zsh"]))
    .addHelpText(
      "after",
      `
Examples:
  $ source <(qmpkit completion bash)                 in ~/.bashrc
  $ qmpkit completion zsh > ~/.zfunc/_qmpkit         with ~/.zfunc on $fpath`,
    )
    .action((shell: string) => {
      // Commander has refused any other shell (its choices) before this runs.
      if (shell === "bash") ctx.io.stdout.write(bashCompletion(program));
      else ctx.io.stdout.write(zshCompletion(program));
    });
}
