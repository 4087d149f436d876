/**
 * Syntax tree of a Dockerfile, shaped like BuildKit's parser.Node so the conformance dumps compare 1:1.
 * One Node per instruction in `Result.ast.children`; its arguments are a `next` chain.
 */
export interface Heredoc {
  /** Delimiter word, without quotes. */
  name: string;
  /** Body text, each line ending in "\n" (not chomped). */
  content: string;
  /** false when the delimiter was quoted: no expansion of the body. */
  expand: boolean;
  /** true for `<<-`: leading tabs are removed. */
  chomp: boolean;
  /** File descriptor number for `3<<EOF` forms; 0 when none was given. */
  fileDescriptor: number;
}

export interface Node {
  /** Instruction keyword lower-cased on the root of each instruction, or an argument's text. */
  value: string;
  /** Instruction nodes only: the keyword exactly as written (`Run`, `FROM`), for messages and lint rules. */
  keyword?: string;
  /** Next argument. */
  next?: Node;
  /** Sub-instructions: the parsed trigger of ONBUILD is here. */
  children: Node[];
  heredocs: Heredoc[];
  /** `json: true` when the arguments came from JSON (exec) form. */
  attributes?: { json?: boolean };
  /** The instruction's full original text (continuations joined), without heredoc bodies. */
  original: string;
  /** Flags such as `--from=build`, as written. */
  flags: string[];
  /** 1-based first and last line of the instruction in the file (heredoc bodies included). */
  startLine: number;
  endLine: number;
  /** Comment lines directly above the instruction (without `#`), for doc comments. */
  prevComment?: string[];
}

/** A non-fatal finding of the parser, such as an empty continuation line. */
export interface Warning {
  short: string;
  detail?: string[];
  url?: string;
  location: { startLine: number; endLine: number };
}

export interface Directives {
  syntax?: string;
  escape?: string;
  check?: string;
  /** All directives in source order (name lower-cased). */
  all: Array<{ name: string; value: string; line: number }>;
}

export interface ParseResult {
  ast: Node;
  escapeToken: '\\' | '`';
  directives: Directives;
  warnings: Warning[];
}

export interface ParseOptions {
  /** File name used in error messages. Default `Dockerfile`. */
  file?: string;
}
