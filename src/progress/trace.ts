/** KILN_TRACE=1 prints where a step's time goes (on stderr, one line each). */
export function trace(msg: string): void {
  if (process.env.KILN_TRACE) process.stderr.write(`[trace] ${msg}\n`);
}
