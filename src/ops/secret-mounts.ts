/**
 * Secret files of RUN --mount=type=secret live on a tmpfs kiln mounts for the step (`<root>/tmp/secret-<pid>-<start>-<rand>`),
 * so a secret byte never reaches the disk: the tmpfs is unmounted at the end of the step, and one left by a killed
 * kiln (its owner pid and start time no longer match a live process) is unmounted at the next start.
 * @internal
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { processStartTime as startTime } from '../proc/index.js';
import { MNT_DETACH, MS_NODEV, MS_NOEXEC, MS_NOSUID, mount, umount } from '../sys/index.js';

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
    mount('kiln-secret', dir, 'tmpfs', MS_NOSUID | MS_NODEV | MS_NOEXEC, `size=${size},mode=0700`);
  } catch (err) {
    await fsp.rmdir(dir).catch(() => undefined);
    throw new Error(`mounting a tmpfs for a secret on ${dir}: ${(err as Error).message}`, { cause: err });
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
  try {
    umount(dir);
  } catch {
    try {
      umount(dir, MNT_DETACH);
    } catch {
      /* not mounted */
    }
  }
}

function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}
