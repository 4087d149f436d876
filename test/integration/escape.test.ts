/**
 * Escape attempts against kiln's own work on a RUN's root filesystem: a RUN swaps a parent of one of its mount
 * targets (every mount type, and the /etc/hosts and /etc/resolv.conf stubs of an image without /etc) for a symlink to
 * a host directory, absolute or through `..`, once or in a loop, or is SIGKILLed mid-step so the next start cleans
 * up. After each, the host directory (a temp dir outside the state root) must hold the same entries with the same
 * times: kiln removed no stub and restored no time through the link.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { build, cleanup, integrationBlocker, kilnBin, newContext, newRoot, requireIntegration, waitForOutput } from '../helpers/kiln.js';

/** Every entry under `dir` with its type, size and times (the host dir's fingerprint). */
function fingerprint(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    const p = path.join(dir, rel);
    const st = fs.lstatSync(p);
    out.push(`${rel || '.'} ${st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : 'f'} ${st.size} ${st.mtimeMs}`);
    if (st.isDirectory()) for (const n of fs.readdirSync(p).sort()) walk(path.join(rel, n));
  };
  walk('');
  return out;
}

/** A host directory holding what kiln's cleanup would remove or re-time if it followed a link there. */
function makeHostDir(): string {
  const h = fs.mkdtempSync(path.join(tmpdir(), 'kiln-host-victim-'));
  for (const d of ['victimdir', 'sub/victimdir']) fs.mkdirSync(path.join(h, d), { recursive: true });
  for (const f of ['empty', 'hosts', 'resolv.conf', 'sub/empty']) fs.writeFileSync(path.join(h, f), '');
  for (const p of ['sub/victimdir', 'sub/empty', 'sub', 'victimdir', 'empty', 'hosts', 'resolv.conf', '.']) fs.utimesSync(path.join(h, p), 1_000_000, 1_000_000);
  return h;
}

describe('escape: kiln never follows a RUN\'s symlinks out of its root', { concurrency: false }, () => {
  let root = '';
  const dirs: string[] = [];
  before(async () => {
    if (integrationBlocker()) return;
    root = await newRoot();
    dirs.push(root);
  });
  /** A fresh host directory and its fingerprint. */
  const newHost = (): { host: string; before0: string[] } => {
    const host = makeHostDir();
    dirs.push(host);
    return { host, before0: fingerprint(host) };
  };
  after(async () => {
    if (dirs.length) await cleanup(...dirs);
  });

  const probe = async (name: string, dockerfile: (h: string) => string, extra: string[] = []): Promise<void> => {
    const { host, before0 } = newHost();
    const ctx = await newContext({ Dockerfile: dockerfile(host), 'secret.txt': 'hush', 'ctxfile': 'c' });
    dirs.push(ctx);
    const r = await build(root, ctx, ['--no-cache', '--secret', `id=s,src=${path.join(ctx, 'secret.txt')}`, ...extra]);
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    assert.deepEqual(fingerprint(host), before0, `${name}: the host directory changed`);
  };

  const swap = (parent: string, target: string): string => `mv ${parent} ${parent}.moved && ln -s ${target} ${parent}`;

  for (const [type, mount] of [
    ['tmpfs', 'type=tmpfs'],
    ['cache', 'type=cache,id=esc'],
    ['bind', 'type=bind,source=.'],
  ] as const) {
    test(`${type} mount: a missing parent and an existing parent swapped for an absolute link`, async (t) => {
      if (!requireIntegration(t)) return;
      await probe(`${type} missing parent`, (h) => `FROM busybox\nRUN --mount=${mount},target=/x/victimdir ${swap('/x', h)}\n`);
      // an existing (lower) directory cannot be renamed on overlayfs, but once emptied it can be removed and replaced;
      // its times are the ones kiln restores after the step
      await probe(`${type} existing parent`, (h) => `FROM busybox\nRUN mkdir -p /p\nRUN --mount=${mount},target=/p/sub/victimdir mv /p/sub /p.sub.moved && rmdir /p && ln -s ${h} /p\n`);
    });
  }

  test('secret mount (a file stub): parent swapped for a link, absolute and through ..', async (t) => {
    if (!requireIntegration(t)) return;
    await probe('secret abs', (h) => `FROM busybox\nRUN --mount=type=secret,id=s,target=/s/empty ${swap('/s', h)}\n`);
    await probe('secret dotdot', (h) => `FROM busybox\nRUN --mount=type=secret,id=s,target=/q/sub/empty mkdir /q2 && ${swap('/q', `../../../../../../../..${h}`)}\n`);
  });

  test('.. in link targets of a tmpfs target\'s parent', async (t) => {
    if (!requireIntegration(t)) return;
    await probe('tmpfs dotdot', (h) => `FROM busybox\nRUN --mount=type=tmpfs,target=/d/sub/victimdir ${swap('/d', `../../../../../../../../..${h}`)}\n`);
  });

  test('/etc/hosts and /etc/resolv.conf stubs of an image with no /etc', async (t) => {
    if (!requireIntegration(t)) return;
    await probe('etc stubs', (h) => `FROM scratch\nCOPY --from=busybox /bin /bin\nRUN mkdir /keep && mv /etc /keep/ && ln -s ${h} /etc\n`);
    await probe('etc stubs, none network', (h) => `FROM scratch\nCOPY --from=busybox /bin /bin\nRUN --network=none mkdir /keep && mv /etc /keep/ && ln -s ${h} /etc\n`);
  });

  test('a RUN that keeps swapping the parent for a link while it runs, ending on either side', async (t) => {
    if (!requireIntegration(t)) return;
    for (const last of ['', ` && ${swap('/w', '$H')}`]) {
      await probe(`loop${last ? ' ending on the link' : ''}`, (h) =>
        `FROM busybox\nRUN --mount=type=tmpfs,target=/w/victimdir --mount=type=cache,id=loop,target=/w/sub/victimdir H=${h}; i=0; while [ $i -lt 300 ]; do mv /w /w.m; ln -s $H /w; rm /w; mv /w.m /w; i=$((i+1)); done${last}\n`);
    }
  });

  test('SIGKILL of kiln after the swap, mid-step: the next start cleans up without following the link', async (t) => {
    if (!requireIntegration(t)) return;
    const { host, before0 } = newHost();
    const ctx = await newContext({ Dockerfile: `FROM busybox\nRUN mkdir -p /k\nRUN --mount=type=tmpfs,target=/k/sub/victimdir --mount=type=tmpfs,target=/n/victimdir mv /k/sub /k.sub && rmdir /k && ln -s ${host} /k && ${swap('/n', host)} && echo SWAPPED-$((1+1)) && sleep 60\n` });
    dirs.push(ctx);
    const child = spawn(kilnBin, ['build', '--root', root, '--progress=plain', '--no-cache', ctx], { stdio: ['ignore', 'pipe', 'pipe'] });
    await waitForOutput(child, 'SWAPPED-2');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('close', r));
    assert.deepEqual(fingerprint(host), before0, 'the host directory changed before the next start');
    const next = await newContext({ Dockerfile: 'FROM busybox\nRUN true\n' });
    dirs.push(next);
    const r = await build(root, next, ['--no-cache']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(fingerprint(host), before0, 'the next start changed the host directory');
    const bundles = path.join(root, 'exec', 'bundles');
    if (fs.existsSync(bundles)) assert.deepEqual(fs.readdirSync(bundles), [], 'a bundle was left behind');
  });
});
