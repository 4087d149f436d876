import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import { BuildError } from '../../errors/index.js';

const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/**
 * Find the OCI runtime binary (a path, or a name looked up in PATH and the sbin directories) and check that kiln
 * runs as root.
 *
 * @throws BuildError ERR_KILN_EXEC_RUNTIME when not root or the runtime cannot be found.
 */
export async function locateRuntime(runtime: string): Promise<string> {
  const uid = process.getuid?.();
  if (uid !== 0) {
    throw new BuildError('ERR_KILN_EXEC_RUNTIME', `running build containers needs root, but kiln runs as uid ${uid ?? 'unknown'}`, {
      hint: 'run kiln as root (for example with sudo)',
    });
  }
  const candidates = runtime.includes('/') ? [runtime] : searchDirs().map((d) => path.join(d, runtime));
  for (const c of candidates) {
    if (await isExecutable(c)) return c;
  }
  throw new BuildError('ERR_KILN_EXEC_RUNTIME', `OCI runtime "${runtime}" not found${runtime.includes('/') ? '' : ' in PATH'}`, {
    hint: 'install runc (apt-get install runc) or pass the path of the runtime',
  });
}

function searchDirs(): string[] {
  const fromEnv = (process.env.PATH ?? '').split(':').filter((d) => d !== '');
  return [...new Set([...fromEnv, ...SBIN_DIRS])];
}

async function isExecutable(p: string): Promise<boolean> {
  try {
    await access(p, constants.X_OK);
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}
