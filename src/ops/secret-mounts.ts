/**
 * Secret files of RUN --mount=type=secret live on a tmpfs kiln mounts for the step (`<root>/tmp/secret-<pid>-<start>-<rand>`),
 * so a secret byte never reaches the disk: the tmpfs is unmounted at the end of the step, and one left by a killed
 * kiln (its owner pid and start time no longer match a live process) is unmounted at the next start.
 * @internal
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';

const PREFIX = 'secret-';

/** A tmpfs holding one secret file, and how to remove it. */
export interface SecretFile {
  file: string;
  release(): Promise<void>;
}

/** Mount a fresh tmpfs under `tmpDir` and write `value` there as a file owned `uid:gid` with `mode`. */
export async function writeSecretFile(opts: { tmpDir: string; value: Buffer; uid: number; gid: number; mode: number }): Promise<SecretFile> {
  const dir = path.join(opts.tmpDir, `${PREFIX}${process.pid}-${startTime(process.pid) ?? '0'}-${randomBytes(6).toString('hex')}`);
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const size = Math.max(64 * 1024, opts.value.length + 64 * 1024);
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700,nosuid,nodev,noexec`, 'kiln-secret', dir]);
  } catch (err) {
    await fsp.rmdir(dir).catch(() => undefined);
    throw err;
  }
  const release = async (): Promise<void> => {
    await unmount(dir);
    await fsp.rmdir(dir).catch(() => undefined);
  };
  try {
    const file = path.join(dir, 'secret');
    await fsp.writeFile(file, opts.value, { mode: 0o600 });
    await fsp.chown(file, opts.uid, opts.gid);
    await fsp.chmod(file, opts.mode);
    return { file, release };
  } catch (err) {
    await release();
    throw err;
  }
}

/** Unmount and remove the secret tmpfs mounts under `tmpDir` whose kiln process is gone. */
export async function cleanSecretMounts(tmpDir: string): Promise<void> {
  const mounted = new Set(
    readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .map((l) => unescapeMountPath(l.split(' ')[1] ?? ''))
      .filter((p) => path.dirname(p) === tmpDir && path.basename(p).startsWith(PREFIX)),
  );
  const names = new Set([...(await fsp.readdir(tmpDir).catch(() => [] as string[])).filter((n) => n.startsWith(PREFIX)), ...[...mounted].map((p) => path.basename(p))]);
  for (const name of names) {
    const m = /^secret-(\d+)-(\d+)-/.exec(name);
    if (m && startTime(Number(m[1])) === m[2]) continue;
    const dir = path.join(tmpDir, name);
    if (mounted.has(dir)) await unmount(dir);
    await fsp.rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

async function unmount(dir: string): Promise<void> {
  await run('umount', [dir]).catch(() => run('umount', ['-l', dir]).catch(() => undefined));
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, (err, _stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`)) : resolve()));
  });
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks), or undefined when there is no such process. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}
