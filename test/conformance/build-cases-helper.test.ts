/**
 * The conformance helper that copies build cases (issue 10, item 7): symlinks are copied verbatim as symlinks and
 * nothing is ever written through them into ../shared, whether ../shared holds git symlinks as real links (a git
 * checkout) or as small files holding the target (a plain copy).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { casesDir, loadBuildCases, prepareCaseContext, snapshotDir } from '../helpers/build-cases.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-cases-helper-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** Every entry of a tree with what a write through a link would change (content, mode, mtime, link text). */
function fingerprint(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const n of fs.readdirSync(path.join(root, rel))) {
      const r = rel ? `${rel}/${n}` : n;
      const p = path.join(root, r);
      const st = fs.lstatSync(p);
      out[r] = `${st.mode.toString(8)} ${st.mtimeMs} ${st.isSymbolicLink() ? `-> ${fs.readlinkSync(p)}` : st.isFile() ? fs.readFileSync(p, 'hex') : ''}`;
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

/** A copy of a case laid out the other way: each small file holding a link target becomes a real symlink. */
function asRealLinks(src: string, dst: string): number {
  let links = 0;
  fs.mkdirSync(dst, { recursive: true });
  for (const n of fs.readdirSync(src)) {
    const s = path.join(src, n);
    const d = path.join(dst, n);
    const st = fs.lstatSync(s);
    if (st.isDirectory()) links += asRealLinks(s, d);
    else if (st.isSymbolicLink()) {
      fs.symlinkSync(fs.readlinkSync(s), d);
      links++;
    } else {
      const text = st.size <= 255 ? fs.readFileSync(s, 'utf8') : '';
      if (text.startsWith('../') && !/\s/.test(text) && fs.existsSync(path.resolve(path.dirname(s), text))) {
        fs.symlinkSync(text, d);
        links++;
      } else fs.copyFileSync(s, d);
    }
  }
  return links;
}

test('a case with symlinks prepares the same context from either layout, and neither source is touched', async () => {
  const { cases } = loadBuildCases();
  const c = cases.find((x) => x.case === 'copy-multiple-some-missing-glob');
  assert.ok(c, 'case copy-multiple-some-missing-glob is in the index');
  const shared = path.join(casesDir, c.case);
  const sharedBefore = fingerprint(shared);
  const linked = path.join(work, 'linked-layout', c.case);
  const links = asRealLinks(shared, linked);
  assert.ok(links >= 5, `only ${links} links in the case`);
  const linkedBefore = fingerprint(linked);

  const fromShared = await prepareCaseContext(c, path.join(work, 'a'));
  const fromLinks = await prepareCaseContext(c, path.join(work, 'b'), linked);
  assert.deepEqual(snapshotDir(fromLinks), snapshotDir(fromShared));
  const snap = snapshotDir(fromLinks);
  const symlinks = Object.entries(snap).filter(([, e]) => e.type === 'symlink');
  assert.equal(symlinks.length, links);
  for (const [p, e] of symlinks) {
    assert.ok(e.link!.startsWith('../'), `${p} -> ${e.link} must stay relative, verbatim`);
    assert.ok(!path.isAbsolute(fs.readlinkSync(path.join(fromLinks, p))));
  }
  assert.deepEqual(fingerprint(shared), sharedBefore, '../shared was written to');
  assert.deepEqual(fingerprint(linked), linkedBefore, 'the linked layout was written through');
});
