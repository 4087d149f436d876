import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, promises as fsp, utimesSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { build, cleanup, imageFiles, kilnSync, newContext, newRoot, readImage, requireIntegration, integrationBlocker } from '../helpers/kiln.js';
import { openState } from '../../src/engine/index.js';

const DOCKERFILE = `FROM busybox
ARG MSG=hello
ENV GREETING=hi
WORKDIR /work
RUN echo "$MSG" > /work/msg && echo step1
COPY app/ /app/
RUN cat /app/main.txt > /work/copied && echo step2
`;

function flags(meta: { 'kiln.steps': Array<{ name: string; cached: boolean }> }): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  for (const s of meta['kiln.steps']) out[s.name.replace(/^\[[^\]]*\]\s*/, '')] = s.cached;
  return out;
}

describe('kiln build: cache behaviour', { concurrency: false }, () => {
  let root = '';
  let ctx = '';
  before(async () => {
    if (integrationBlocker()) return;
    root = await newRoot();
    ctx = await newContext({ Dockerfile: DOCKERFILE, 'app/main.txt': 'v1\n', 'app/other.txt': 'other\n', '.dockerignore': 'app/ignored*\n' });
  });
  after(async () => {
    if (root) await cleanup(root, ctx);
  });

  test('cold build runs every step, unchanged rebuild caches every step', async (t) => {
    if (!requireIntegration(t)) return;
    const first = await build(root, ctx, ['-t', 'demo:latest']);
    assert.equal(first.code, 0, first.stderr);
    const f1 = flags(first.meta);
    assert.equal(f1['RUN echo "$MSG" > /work/msg && echo step1'], false);
    assert.equal(f1['COPY app/ /app/'], false);
    const second = await build(root, ctx, ['-t', 'demo:latest']);
    assert.equal(second.code, 0, second.stderr);
    for (const s of second.meta['kiln.steps']) assert.equal(s.cached, true, `${s.name} should be cached`);
    assert.match(second.stderr, /CACHED/);
    const files = await imageFiles(root, second.meta['containerimage.digest']);
    assert.equal(files.get('work/msg')?.content, 'hello\n');
    assert.equal(files.get('work/copied')?.content, 'v1\n');
    assert.equal(files.get('app/main.txt')?.uid, 0, 'COPY without --chown gives 0:0');
  });

  test('touch of a copied file keeps every step cached', async (t) => {
    if (!requireIntegration(t)) return;
    const f = path.join(ctx, 'app', 'main.txt');
    const future = new Date(Date.now() + 60_000);
    utimesSync(f, future, future);
    const r = await build(root, ctx);
    assert.equal(r.code, 0, r.stderr);
    for (const s of r.meta['kiln.steps']) assert.equal(s.cached, true, `${s.name} should be cached after touch`);
  });

  test('a file added under a .dockerignore pattern causes no miss', async (t) => {
    if (!requireIntegration(t)) return;
    writeFileSync(path.join(ctx, 'app', 'ignored-notes.txt'), 'scratch notes');
    const r = await build(root, ctx);
    assert.equal(r.code, 0, r.stderr);
    for (const s of r.meta['kiln.steps']) assert.equal(s.cached, true, `${s.name} should be cached`);
    const files = await imageFiles(root, r.meta['containerimage.digest']);
    assert.equal(files.has('app/ignored-notes.txt'), false);
  });

  test('a changed copied file rebuilds the COPY and later steps only', async (t) => {
    if (!requireIntegration(t)) return;
    writeFileSync(path.join(ctx, 'app', 'main.txt'), 'v2\n');
    const r = await build(root, ctx);
    assert.equal(r.code, 0, r.stderr);
    const f = flags(r.meta);
    assert.equal(f['WORKDIR /work'], true);
    assert.equal(f['RUN echo "$MSG" > /work/msg && echo step1'], true);
    assert.equal(f['COPY app/ /app/'], false);
    assert.equal(f['RUN cat /app/main.txt > /work/copied && echo step2'], false);
    const files = await imageFiles(root, r.meta['containerimage.digest']);
    assert.equal(files.get('work/copied')?.content, 'v2\n');
  });

  test('a chmod of a copied file is a miss', async (t) => {
    if (!requireIntegration(t)) return;
    chmodSync(path.join(ctx, 'app', 'other.txt'), 0o755);
    const r = await build(root, ctx);
    assert.equal(r.code, 0, r.stderr);
    const f = flags(r.meta);
    assert.equal(f['COPY app/ /app/'], false);
    assert.equal(f['RUN echo "$MSG" > /work/msg && echo step1'], true);
    const files = await imageFiles(root, r.meta['containerimage.digest']);
    assert.equal(files.get('app/other.txt')!.mode & 0o777, 0o755);
  });

  test('a changed build arg read by RUN rebuilds from that RUN', async (t) => {
    if (!requireIntegration(t)) return;
    const r = await build(root, ctx, ['--build-arg', 'MSG=bonjour']);
    assert.equal(r.code, 0, r.stderr);
    const f = flags(r.meta);
    assert.equal(f['WORKDIR /work'], true);
    assert.equal(f['RUN echo "$MSG" > /work/msg && echo step1'], false);
    const files = await imageFiles(root, r.meta['containerimage.digest']);
    assert.equal(files.get('work/msg')?.content, 'bonjour\n');
  });

  test('a changed RUN line rebuilds it and what follows', async (t) => {
    if (!requireIntegration(t)) return;
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), DOCKERFILE.replace('echo "$MSG" > /work/msg', 'echo "$MSG again" > /work/msg'));
    const r = await build(root, ctx);
    assert.equal(r.code, 0, r.stderr);
    const f = flags(r.meta);
    assert.equal(f['WORKDIR /work'], true);
    assert.equal(f['RUN echo "$MSG again" > /work/msg && echo step1'], false);
    assert.equal(f['COPY app/ /app/'], false);
    assert.equal(f['RUN cat /app/main.txt > /work/copied && echo step2'], false);
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), DOCKERFILE);
  });

  test('early cutoff: a changed RUN line whose output is identical keeps later steps cached', async (t) => {
    if (!requireIntegration(t)) return;
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), DOCKERFILE.replace('echo step1', 'echo step1 && true'));
    const r = await build(root, ctx);
    assert.equal(r.code, 0, r.stderr);
    const f = flags(r.meta);
    assert.equal(f['RUN echo "$MSG" > /work/msg && echo step1 && true'], false, 'the changed step runs');
    assert.equal(f['COPY app/ /app/'], true, 'same output, so the COPY on top of it hits');
    assert.equal(f['RUN cat /app/main.txt > /work/copied && echo step2'], true);
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), DOCKERFILE);
  });

  test('--no-cache runs everything', async (t) => {
    if (!requireIntegration(t)) return;
    const r = await build(root, ctx, ['--no-cache']);
    assert.equal(r.code, 0, r.stderr);
    for (const s of r.meta['kiln.steps'].filter((x) => !/FROM/.test(x.name))) assert.equal(s.cached, false, `${s.name} must run`);
  });

  test('a different base under the same tag caches nothing', async (t) => {
    if (!requireIntegration(t)) return;
    const warm = await build(root, ctx);
    assert.ok(warm.meta['kiln.steps'].every((s) => s.cached));
    const alt = await newContext({ 'marker.txt': 'another base' });
    const rootfs = path.join(alt, 'rootfs.tar');
    spawnSync('sh', ['-c', `mkdir -p ${alt}/r && tar -xf ${path.join(process.env.TMPDIR ?? '/tmp', `kiln-test-busybox-${process.pid}.tar`)} -C ${alt}/r && echo x > ${alt}/r/etc/marker && tar -C ${alt}/r -cf ${rootfs} .`]);
    assert.equal(kilnSync(['import', '--root', root, rootfs, 'busybox:latest']).code, 0);
    const r = await build(root, ctx);
    assert.equal(r.code, 0, r.stderr);
    for (const s of r.meta['kiln.steps'].filter((x) => !/FROM/.test(x.name))) assert.equal(s.cached, false, `${s.name} must miss on a new base`);
    await cleanup(alt);
  });
});

describe('kiln build: image contents and config', () => {
  test('whiteouts: a file deleted in a later RUN is absent; config reflects the instructions', async (t) => {
    if (!requireIntegration(t)) return;
    const root = await newRoot();
    const ctx = await newContext({
      Dockerfile: `FROM busybox
RUN mkdir -p /d/sub && echo a > /d/a && echo b > /d/sub/b && echo keep > /keep
RUN rm /d/a && rm -r /d/sub && ln -s /keep /link && ln /keep /hard
ENV A=1 B="two words"
LABEL maintainer="me" version=1.0
EXPOSE 80 443/udp
USER 1000:1000
WORKDIR /srv
VOLUME ["/data"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --retries=2 CMD ["true"]
SHELL ["/bin/sh", "-ec"]
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo hi"]
`,
    });
    try {
      const r = await build(root, ctx, ['-t', 'cfg:1']);
      assert.equal(r.code, 0, r.stderr);
      const files = await imageFiles(root, r.meta['containerimage.digest']);
      assert.equal(files.has('d/a'), false);
      assert.equal(files.has('d/sub'), false);
      assert.equal(files.has('d/sub/b'), false);
      assert.equal(files.get('keep')?.content, 'keep\n');
      assert.equal(files.get('link')?.linkname, '/keep');
      const { config } = await readImage(root, r.meta['containerimage.digest']);
      const c = config.config;
      assert.ok(c.Env?.includes('A=1'));
      assert.ok(c.Env?.includes('B=two words'));
      assert.ok(c.Env?.some((e) => e.startsWith('PATH=')));
      assert.deepEqual(c.Labels, { maintainer: 'me', version: '1.0' });
      assert.deepEqual(c.ExposedPorts, { '80/tcp': {}, '443/udp': {} });
      assert.equal(c.User, '1000:1000');
      assert.equal(c.WorkingDir, '/srv');
      assert.deepEqual(c.Volumes, { '/data': {} });
      assert.equal(c.StopSignal, 'SIGTERM');
      assert.deepEqual(c.Healthcheck, { Test: ['CMD', 'true'], Interval: 5_000_000_000, Retries: 2 });
      assert.deepEqual(c.Shell, ['/bin/sh', '-ec']);
      assert.deepEqual(c.Entrypoint, ['/bin/sh', '-c']);
      assert.deepEqual(c.Cmd, ['echo hi']);
      assert.equal(config.rootfs.diff_ids.length, 4, 'busybox + 2 RUN layers + WORKDIR');
      assert.equal(config.history?.filter((h) => !h.empty_layer).length, 4);
    } finally {
      await cleanup(root, ctx);
    }
  });

  test('skopeo accepts the OCI output and its digests verify', async (t) => {
    if (!requireIntegration(t)) return;
    const root = await newRoot();
    const ctx = await newContext({ Dockerfile: 'FROM busybox\nRUN echo hello > /hello\n' });
    try {
      const out = path.join(ctx, '..', `${path.basename(ctx)}-oci.tar`);
      const r = await build(root, ctx, ['-t', 'sk:1', '--output', `type=oci,dest=${out}`]);
      assert.equal(r.code, 0, r.stderr);
      const insp = spawnSync('skopeo', ['inspect', '--raw', `oci-archive:${out}`], { encoding: 'utf8' });
      assert.equal(insp.status, 0, insp.stderr);
      const { createHash } = await import('node:crypto');
      assert.equal(`sha256:${createHash('sha256').update(insp.stdout).digest('hex')}`, r.meta['containerimage.digest']);
      const dest = path.join(ctx, '..', `${path.basename(ctx)}-copy`);
      const cp = spawnSync('skopeo', ['copy', `oci-archive:${out}`, `oci:${dest}:x`], { encoding: 'utf8' });
      assert.equal(cp.status, 0, cp.stderr);
      await fsp.rm(out, { force: true });
      await fsp.rm(dest, { recursive: true, force: true });
    } finally {
      await cleanup(root, ctx);
    }
  });
});

describe('kiln build: errors', () => {
  test('a malformed Dockerfile, a COPY outside the context and a failing RUN each give file:line errors; the store stays usable', async (t) => {
    if (!requireIntegration(t)) return;
    const root = await newRoot();
    const ctx = await newContext({ Dockerfile: 'FROM busybox\nRUN echo ok\nCMD [ "echo", [ "nested" ] ]\n', 'in.txt': 'x' });
    try {
      let r = await build(root, ctx);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /Dockerfile:3: /);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');

      await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo ok\nCOPY ../../etc/passwd /x\n');
      r = await build(root, ctx);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /Dockerfile:3: /);

      await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo ok\nRUN echo about to fail && exit 7\n');
      r = await build(root, ctx);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /Dockerfile:3: /);
      assert.match(r.stderr, /exit code 7/);
      assert.match(r.stderr, /about to fail/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);

      await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo ok\nCOPY in.txt /in.txt\n');
      r = await build(root, ctx);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.meta['kiln.steps'].find((s) => s.name.includes('RUN echo ok'))?.cached, true);
    } finally {
      await cleanup(root, ctx);
    }
  });
});

describe('kiln build: killed builds', () => {
  async function killDuring(root: string, ctx: string, waitFor: (root: string) => boolean): Promise<void> {
    const { spawn } = await import('node:child_process');
    const p = spawn(path.join(process.cwd(), 'bin', 'kiln'), ['build', '--root', root, '--progress=plain', ctx], { stdio: 'ignore' });
    const t0 = Date.now();
    while (!waitFor(root) && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 20));
    p.kill('SIGKILL');
    await new Promise((r) => p.on('close', r));
  }

  async function verifyStore(root: string): Promise<void> {
    const s = await openState({ root, cleanup: false });
    try {
      for await (const b of s.store.list()) assert.equal(await s.store.verify(b.digest), true, `blob ${b.digest} must match its digest`);
    } finally {
      s.close();
    }
  }

  test('SIGKILL in the middle of a RUN, then a rebuild reuses finished steps', async (t) => {
    if (!requireIntegration(t)) return;
    const root = await newRoot();
    const ctx = await newContext({ Dockerfile: `FROM busybox\nRUN echo first > /first\nRUN sleep 37\n` });
    try {
      // the second RUN is running once its process shows up on the host
      await killDuring(root, ctx, () => spawnSync('pgrep', ['-f', '^sleep 37$']).status === 0);
      await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo first > /first\nRUN echo second > /second\n');
      const r = await build(root, ctx);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.meta['kiln.steps'].find((s) => s.name.includes('echo first'))?.cached, true);
      assert.equal(r.meta['kiln.steps'].find((s) => s.name.includes('echo second'))?.cached, false);
      await verifyStore(root);
      const mounts = await fsp.readFile('/proc/self/mounts', 'utf8');
      assert.equal(mounts.includes(root), false, 'no mount of the killed build is left');
    } finally {
      await cleanup(root, ctx);
    }
  });

  test('SIGKILL while a layer is being written, then a rebuild succeeds and every blob verifies', async (t) => {
    if (!requireIntegration(t)) return;
    const root = await newRoot();
    // a large layer takes long enough to compress that the kill lands while it is written
    const ctx = await newContext({ Dockerfile: 'FROM busybox\nRUN echo a > /a\nRUN dd if=/dev/urandom of=/big bs=1M count=150 2>/dev/null\n' });
    try {
      await killDuring(root, ctx, (r) => {
        try {
          const dir = path.join(r, 'content', 'ingest');
          return require_readdir(dir).some((f) => statSync(path.join(dir, f)).size > 1_000_000);
        } catch {
          return false;
        }
      });
      const r = await build(root, ctx);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.meta['kiln.steps'].find((s) => s.name.includes('echo a'))?.cached, true);
      await verifyStore(root);
      const again = await build(root, ctx);
      assert.ok(again.meta['kiln.steps'].every((s) => s.cached));
    } finally {
      await cleanup(root, ctx);
    }
  });
});

import { readdirSync as require_readdir, statSync } from 'node:fs';

describe('kiln build --network', () => {
  test('--network none gives RUN steps only a loopback interface; the default shares the host network', async (t) => {
    if (!requireIntegration(t)) return;
    const root = await newRoot();
    const ctx = await newContext({ Dockerfile: 'FROM busybox\nRUN tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | sort > /ifaces\n' });
    try {
      const none = await build(root, ctx, ['--network', 'none', '-t', 'n:1']);
      assert.equal(none.code, 0, none.stderr);
      assert.equal((await imageFiles(root, none.meta['containerimage.digest'])).get('ifaces')?.content, 'lo\n');
      const host = await build(root, ctx);
      assert.equal(host.meta['kiln.steps'].find((x) => x.name.includes('RUN'))?.cached, false, 'the network mode is part of the key');
      assert.equal(host.code, 0, host.stderr);
      const ifaces = (await imageFiles(root, host.meta['containerimage.digest'])).get('ifaces')?.content ?? '';
      assert.notEqual(ifaces, 'lo\n', 'the host network has more than loopback');
      const bad = await build(root, ctx, ['--network', 'bridge']);
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /unsupported mode "bridge"/);
    } finally {
      await cleanup(root, ctx);
    }
  });
});
