import os from 'node:os';
import path from 'node:path';

/**
 * Where kiln keeps its state when no `--root` is given: KILN_ROOT, else /var/lib/kiln for root, else the user's
 * XDG data folder. A leaf of its own so that the lean CLI entry (src/cli/lean.ts) can find ROOT/kiln.sock without
 * loading the engine.
 */
export function defaultRoot(): string {
  if (process.env.KILN_ROOT) return process.env.KILN_ROOT;
  if (process.getuid?.() === 0) return '/var/lib/kiln';
  const xdg = process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(xdg, 'kiln');
}
