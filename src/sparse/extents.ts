/**
 * Files with holes. Node exposes neither lseek's SEEK_DATA/SEEK_HOLE nor FIEMAP, and reading a hole is not free (the
 * kernel fills the page cache with zero pages: ~5 s of system time per GiB here), so the data map of a sparse file
 * comes from perl's sysseek, which passes SEEK_DATA (3) and SEEK_HOLE (4) straight to lseek(2) (perl-base is
 * Essential on Debian). One short process per sparse file; ordinary files never pay for it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

/** A run of a file: [offset, length]. */
export type Extent = [number, number];

/** Files smaller than this are never treated as sparse. */
const MIN_SPARSE = 64 * 1024;

/** True when the file has fewer blocks allocated than its size needs: it has holes. */
export function hasHoles(st: fs.Stats): boolean {
  return st.isFile() && st.size >= MIN_SPARSE && st.blocks * 512 < st.size;
}

const SEEK_SCRIPT = [
  'open(my $f, "<", $ARGV[0]) or die "$!\\n";',
  'my $end = -s $f; my $p = 0;',
  'while ($p < $end) {',
  '  my $d = sysseek($f, $p, 3); last unless defined $d;',
  '  my $h = sysseek($f, $d, 4); die "SEEK_HOLE: $!\\n" unless defined $h;',
  '  print $d + 0, " ", $h - $d, "\\n"; $p = $h;',
  '}',
].join('\n');

/**
 * The data extents of a file as the file system reports them (holes excluded), sorted. When the file system cannot
 * tell (no SEEK_DATA) the whole file is one extent, which is always correct, just slower to read.
 */
export function dataExtents(file: string, size: number): Extent[] {
  let out: string;
  try {
    out = execFileSync('perl', ['-e', SEEK_SCRIPT, file], { encoding: 'latin1', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 256 * 1024 * 1024 });
  } catch {
    return size > 0 ? [[0, size]] : [];
  }
  const extents: Extent[] = [];
  for (const line of out.split('\n')) {
    if (line === '') continue;
    const [o, l] = line.split(' ').map(Number);
    if (!Number.isSafeInteger(o) || !Number.isSafeInteger(l) || o < 0 || l < 0) return size > 0 ? [[0, size]] : [];
    const len = Math.min(l, size - o);
    if (len > 0) extents.push([o, len]);
  }
  return extents;
}

/**
 * Copy a file that has holes so that the copy has them too: coreutils' `cp --sparse=always` (which skips holes with
 * SEEK_DATA/SEEK_HOLE and turns zero blocks into holes), then the source's permission bits. `dst` must not exist.
 * A failure is thrown as an Error carrying cp's message (and ENOSPC as its code when the disk is full), for the
 * caller to translate.
 */
export function copySparseFile(src: string, dst: string, mode: number): void {
  try {
    execFileSync('cp', ['--sparse=always', '--no-dereference', '-T', '--', src, dst], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? '').trim();
    throw Object.assign(new Error(`copying ${src} failed: ${stderr || (err as Error).message}`), {
      code: /No space left/i.test(stderr) ? 'ENOSPC' : 'EIO',
      cause: err,
    });
  }
  fs.chmodSync(dst, mode & 0o7777);
}
