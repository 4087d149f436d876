// A failure is never a success (issue 14, item 6), on a real small filesystem: a 300 MB ext4 image on a loop device
// (a tmpfs of size=300m when no loop device can be set up; the test prints which) mounted under a temp dir and used
// as the state root. A RUN whose output fits but whose layer does not fails with a no-space sentence and status 1 and
// is recorded as failed; with the disk filled to 100% by another file, du/images/history/prune still work, prune
// frees kiln's space and the next build succeeds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { busyboxRootfsTar, build, kiln, kilnSync, newContext, requireIntegration, cleanup, type RunResult } from '../helpers/kiln.js';

function assertNoInternals(r: RunResult, what: string): void {
  for (const bad of [/Cannot read properties/, /^\s+at .+[(:]\d+/m, /TypeError/, /disk I\/O error/]) {
    assert.doesNotMatch(r.stderr, bad, `${what}: stderr shows an internal error:\n${r.stderr}`);
  }
}

/** Mount a 300 MB filesystem under a new temp dir: ext4 on a loop device, else tmpfs. */
function smallFilesystem(): { dir: string; kind: string; release: () => void } {
  const base = mkdtempSync(path.join(tmpdir(), 'kiln-small-'));
  const img = path.join(base, 'fs.img');
  const dir = path.join(base, 'mnt');
  spawnSync('mkdir', ['-p', dir]);
  spawnSync('truncate', ['-s', '300M', img]);
  let kind = 'ext4 on a loop device';
  const mk = spawnSync('mkfs.ext4', ['-q', '-F', img], { encoding: 'utf8' });
  if (mk.status !== 0 || spawnSync('mount', ['-o', 'loop', img, dir]).status !== 0) {
    kind = 'tmpfs size=300m (no loop device)';
    const t = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=300m', 'tmpfs', dir], { encoding: 'utf8' });
    assert.equal(t.status, 0, `cannot mount a small filesystem: ${t.stderr}`);
  }
  return {
    dir,
    kind,
    release: () => {
      spawnSync('sh', ['-c', `grep -o " ${dir}/[^ ]*" /proc/self/mounts | xargs -r -n1 umount -l`]);
      spawnSync('umount', [dir]);
      rmSync(base, { recursive: true, force: true });
    },
  };
}

/** Fill the filesystem to 100% (no block left, also none of root's reserve) with one file beside the state root. */
function fill(dir: string): void {
  spawnSync('dd', ['if=/dev/zero', `of=${path.join(dir, 'filler')}`, 'bs=1M'], { stdio: 'ignore' });
  spawnSync('dd', ['if=/dev/zero', `of=${path.join(dir, 'filler-tail')}`, 'bs=1k'], { stdio: 'ignore' });
}

function latestBuildStatus(root: string): string {
  const r = kilnSync(['history', 'ls', '--root', root]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n')[1]?.split(/\s+/)[1] ?? '';
}

test('on a 300 MB filesystem: a layer that does not fit fails the build; a 100% full disk can still be pruned', { timeout: 900_000 }, async (t) => {
  if (!requireIntegration(t)) return;
  const fs = smallFilesystem();
  t.diagnostic(`small filesystem: ${fs.kind}`);
  const root = path.join(fs.dir, 'root');
  const ctx = await newContext({
    'Dockerfile.mid': 'FROM busybox\nRUN head -c 40000000 /dev/urandom > /mid\n',
    'Dockerfile.small': 'FROM busybox\nRUN echo small > /small\n',
  });
  try {
    const imp = kilnSync(['import', '--root', root, busyboxRootfsTar(), 'busybox:latest']);
    assert.equal(imp.code, 0, imp.stderr);
    const mid = await build(root, ctx, ['-f', path.join(ctx, 'Dockerfile.mid'), '-t', 'mid:1']);
    assert.equal(mid.code, 0, mid.stderr);

    // the RUN's output (70% of what is free) fits in the upper directory; its incompressible layer blob does not
    const free = statfsSync(fs.dir).bavail * statfsSync(fs.dir).bsize;
    const size = Math.floor(free * 0.7);
    writeFileSync(path.join(ctx, 'Dockerfile.big'), `FROM busybox\nRUN head -c ${size} /dev/urandom > /big && echo wrote ${size}\n`);
    const big = await build(root, ctx, ['-f', path.join(ctx, 'Dockerfile.big'), '-t', 'big:1']);
    assert.equal(big.code, 1, `a build whose layer cannot be written must fail:\n${big.stderr}`);
    assert.match(big.stderr, new RegExp(`wrote ${size}`), 'the RUN itself succeeded');
    assert.match(big.stderr, /no space left on device while writing .+ under \//);
    assert.match(big.stderr, /kiln du.*kiln prune/);
    assertNoInternals(big, 'layer does not fit');
    assert.equal(big.meta['containerimage.digest'], '', 'no metadata file claims an image');
    assert.equal(latestBuildStatus(root), 'failed');
    const images = kilnSync(['images', '--root', root]);
    assert.doesNotMatch(images.stdout, /^big/m);
    assert.deepEqual(readdirSync(path.join(root, 'content', 'ingest')), [], 'no partial blob is left');

    // another file fills the disk to the last block
    fill(fs.dir);
    spawnSync('sync', ['-f', fs.dir]);
    assert.equal(statfsSync(fs.dir).bavail, 0, 'the disk is full (df says 100%)');
    for (const args of [['du'], ['images'], ['history', 'ls'], ['rmi', 'mid:1']]) {
      const r = await kiln([...args, '--root', root]);
      assert.equal(r.code, 0, `kiln ${args.join(' ')} on a full disk: ${r.stderr}`);
      assertNoInternals(r, args.join(' '));
    }
    const before = statfsSync(fs.dir).bfree;
    const prune = await kiln(['prune', '-a', '-f', '--root', root]);
    assert.equal(prune.code, 0, `prune on a full disk: ${prune.stderr}`);
    assertNoInternals(prune, 'prune');
    const freed = (statfsSync(fs.dir).bfree - before) * statfsSync(fs.dir).bsize;
    assert.ok(freed > 50_000_000, `prune freed kiln's space (${freed} bytes)`);
    assert.ok(existsSync(path.join(fs.dir, 'filler')), 'the other file is left alone');

    const next = await build(root, ctx, ['-f', path.join(ctx, 'Dockerfile.small'), '-t', 'small:1']);
    assert.equal(next.code, 0, `the next build succeeds: ${next.stderr}`);
    assert.match(next.meta['containerimage.digest'], /^sha256:/);
    assert.equal(latestBuildStatus(root), 'success');
  } finally {
    await cleanup(ctx);
    fs.release();
  }
});
