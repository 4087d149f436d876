// Unpacking when an image arrives (issue 13, item 1): import and load leave the image's layers unpacked into
// committed snapshots, and a build on top finds them there and unpacks nothing. Real kiln, real state roots.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { busyboxRootfsTar, build, cleanup, kilnSync, newContext, readImage, requireIntegration } from '../helpers/kiln.js';
import { openState } from '../../src/engine/index.js';

/** For each layer of the image: the snapshot folder it is unpacked in, or undefined. */
async function unpackedDirs(root: string, digest: string): Promise<Array<string | undefined>> {
  const { config } = await readImage(root, digest);
  const s = await openState({ root, cleanup: false });
  try {
    return config.rootfs.diff_ids.map((d) => {
      const rec = s.db.layers.getLayer(d);
      if (rec?.snapshotId == null || s.db.layers.getSnapshot(rec.snapshotId)?.state !== 'committed') return undefined;
      return s.snapshots.dir(rec.snapshotId);
    });
  } finally {
    s.close();
  }
}

function snapshotCount(root: string): number {
  return fs.readdirSync(path.join(root, 'snapshots')).length;
}

test('import and load unpack the image at once; a build on it unpacks nothing', { timeout: 300_000 }, async (t) => {
  if (!requireIntegration(t)) return;
  const a = fs.mkdtempSync(path.join(tmpdir(), 'kiln-unpack-a-'));
  const b = fs.mkdtempSync(path.join(tmpdir(), 'kiln-unpack-b-'));
  const ctx = await newContext({ Dockerfile: 'FROM base:1\nRUN echo built > /built\n' });
  try {
    const imp = kilnSync(['import', '--root', a, busyboxRootfsTar(), 'base:1']);
    assert.equal(imp.code, 0, imp.stderr);
    const [dir] = await unpackedDirs(a, imp.stdout.trim());
    assert.ok(dir !== undefined, 'the imported layer has a committed snapshot');
    assert.ok(fs.lstatSync(path.join(dir, 'bin/busybox')).isFile(), 'holding the rootfs');

    // a build's FROM finds the layer unpacked: the only new snapshot is the RUN's
    const before = snapshotCount(a);
    const r = await build(a, ctx, ['-t', 'on-base:1']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(snapshotCount(a) - before, 1, 'one snapshot for the RUN, none for the base');

    // load into another root: every layer arrives unpacked
    const tarFile = path.join(b, '..', `${path.basename(b)}-img.tar`);
    t.after(() => fs.rmSync(tarFile, { force: true }));
    assert.equal(kilnSync(['save', '--root', a, 'on-base:1', '-o', tarFile]).code, 0);
    const load = kilnSync(['load', '--root', b, tarFile]);
    assert.equal(load.code, 0, load.stderr);
    const dirs = await unpackedDirs(b, r.meta['containerimage.digest']);
    assert.equal(dirs.length, 2);
    assert.ok(dirs.every((d) => d !== undefined), `every loaded layer is unpacked: ${JSON.stringify(dirs)}`);
    assert.equal(fs.readFileSync(path.join(dirs[1]!, 'built'), 'utf8'), 'built\n');
  } finally {
    await cleanup(a, b, ctx);
  }
});
