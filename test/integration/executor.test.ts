import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRuncExecutor, createSpec, type ExecRequest, type Executor } from '../../src/executor/index.js';

const RUNC = '/usr/sbin/runc';
const BUSYBOX = '/bin/busybox';

function prerequisiteProblem(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root';
  if (!existsSync(RUNC)) return `${RUNC} is missing`;
  if (!existsSync(BUSYBOX)) return `${BUSYBOX} is missing (apt-get install busybox-static)`;
  return undefined;
}

const problem = prerequisiteProblem();
const inCI = process.env.CI === 'true';
if (problem && !inCI) console.log(`# skipping executor integration tests: ${problem}`);
/** Skip only outside CI; under CI=true the tests run (and fail) so a missing prerequisite cannot go unnoticed. */
const skip = problem && !inCI ? problem : false;

/** A static-busybox root filesystem with root, user 1000 (also in group "extra") and nothing else. */
async function makeRootfs(dir: string): Promise<string> {
  const root = path.join(dir, 'rootfs');
  await mkdir(path.join(root, 'bin'), { recursive: true });
  await mkdir(path.join(root, 'etc'));
  await copyFile(BUSYBOX, path.join(root, 'bin', 'busybox'));
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) await symlink('busybox', path.join(root, 'bin', a));
  await writeFile(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n');
  await writeFile(path.join(root, 'etc', 'group'), 'root:x:0:\nuser:x:1000:\nextra:x:2000:user\n');
  return root;
}

/** 1048576 unless this process may not raise its hard limit (no CAP_SYS_RESOURCE), then that hard limit. */
function expectedNofile(): number {
  const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1];
  if ((parseInt(capEff.slice(-8), 16) & (1 << 24)) !== 0) return 1048576;
  const hard = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))![1];
  return hard === 'unlimited' ? 1048576 : Math.min(1048576, Number(hard));
}

interface Captured {
  exitCode: number;
  durationMs: number;
  stdout: string;
  stderr: string;
}

describe('RuncExecutor (real runc)', { skip }, () => {
  let work: string;
  let stateDir: string;
  let rootfs: string;
  let exec: Executor;

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'kiln-exec-'));
    stateDir = path.join(work, 'state');
    rootfs = await makeRootfs(work);
    exec = createRuncExecutor({ stateDir, runtime: RUNC });
  });

  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  async function sh(script: string, extra: Partial<ExecRequest> = {}): Promise<Captured> {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const res = await exec.run({
      rootfs,
      args: ['/bin/sh', '-c', script],
      env: [],
      cwd: '/',
      onStdout: (c) => out.push(c),
      onStderr: (c) => err.push(c),
      ...extra,
    });
    return { ...res, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
  }

  function listContainers(): unknown[] {
    const out = execFileSync(RUNC, ['--root', path.join(stateDir, 'runc'), 'list', '--format', 'json'], { encoding: 'utf8' });
    return (JSON.parse(out.trim() || 'null') as unknown[] | null) ?? [];
  }

  test('streams stdout and stderr separately', async () => {
    const r = await sh('echo to-out; echo to-err >&2');
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, 'to-out\n');
    assert.equal(r.stderr, 'to-err\n');
    assert.ok(r.durationMs >= 0);
  });

  test('returns the exit code, and 128+n for a signal', async () => {
    assert.equal((await sh('exit 3')).exitCode, 3);
    const killed = await sh('echo ready; sleep 100', {
      onStdout: () => {
        for (const c of listContainers() as { id: string }[]) execFileSync(RUNC, ['--root', path.join(stateDir, 'runc'), 'kill', c.id, 'KILL']);
      },
    });
    assert.equal(killed.exitCode, 137);
  });

  test('env as given plus default PATH; cwd is created when missing', async () => {
    const r = await sh('echo "$FOO"; pwd; echo "$PATH"', { env: ['FOO=bar baz'], cwd: '/work/dir' });
    assert.equal(r.stdout, 'bar baz\n/work/dir\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n');
    assert.ok(existsSync(path.join(rootfs, 'work', 'dir')), 'cwd stays in the rootfs like WORKDIR');
    const own = await sh('echo "$PATH"', { env: ['PATH=/bin'] });
    assert.equal(own.stdout, '/bin\n');
  });

  test('USER by name gets its groups; uid:gid is taken literally; unknown names fail clearly', async () => {
    const byName = await sh('id -u; id -g; id -G; echo "$HOME"', { user: 'user' });
    assert.equal(byName.stdout, '1000\n1000\n1000 2000\n/home/user\n');
    const numeric = await sh('id -u; id -g; id -G', { user: '1234:5678' });
    assert.equal(numeric.stdout, '1234\n5678\n5678\n');
    const mixed = await sh('id -u; id -g', { user: 'user:extra' });
    assert.equal(mixed.stdout, '1000\n2000\n');
    await assert.rejects(sh('true', { user: 'nobody' }), (e: { code?: string; message?: string }) =>
      e.code === 'ERR_KILN_EXEC_USER' && /nobody/.test(e.message ?? ''));
    await assert.rejects(sh('true', { user: 'user:nogroup' }), { code: 'ERR_KILN_EXEC_USER' });
  });

  test("Docker's default capabilities for root, none effective for other users", async () => {
    const root = await sh('grep -E "^Cap(Eff|Bnd)" /proc/self/status');
    assert.match(root.stdout, /CapEff:\s+00000000a80425fb/);
    assert.match(root.stdout, /CapBnd:\s+00000000a80425fb/);
    const user = await sh('grep -E "^Cap(Eff|Bnd)" /proc/self/status', { user: '1000' });
    assert.match(user.stdout, /CapEff:\s+0000000000000000/);
    assert.match(user.stdout, /CapBnd:\s+00000000a80425fb/);
  });

  test('system mounts, masked and read-only paths, rlimit and hostname', async () => {
    const r = await sh(
      [
        'test -c /dev/null && test -c /dev/urandom && test -d /dev/pts && test -d /dev/shm && test -d /dev/mqueue && echo dev-ok',
        'test -e /proc/self/status && echo proc-ok',
        'test -d /sys/fs/cgroup && echo sys-ok',
        'touch /sys/x 2>/dev/null || echo sys-ro',
        'echo 1 > /proc/sys/kernel/domainname 2>/dev/null || echo proc-sys-ro',
        'echo masked=$(cat /proc/timer_list | wc -c)',
        'ulimit -n',
        'hostname',
      ].join('; '),
      { hostname: 'builder' },
    );
    assert.equal(r.exitCode, 0, r.stderr);
    assert.ok(readFileSync('/proc/timer_list').length > 0, 'the host shows /proc/timer_list, so masking is visible');
    assert.equal(r.stdout, `dev-ok\nproc-ok\nsys-ok\nsys-ro\nproc-sys-ro\nmasked=0\n${expectedNofile()}\nbuilder\n`);
  });

  test('network none has only lo; host network sees the host interfaces and resolv.conf', async () => {
    const none = await sh('ls /sys/class/net', { network: 'none' });
    assert.equal(none.stdout.trim().split(/\s+/).join(','), 'lo');
    const hostIfaces = (await readdir('/sys/class/net')).sort();
    const host = await sh('ls /sys/class/net; echo ---; cat /etc/resolv.conf');
    const [ifaces, resolv] = host.stdout.split('---\n');
    assert.deepEqual(ifaces.trim().split(/\s+/).sort(), hostIfaces);
    assert.ok(hostIfaces.length > 1, 'the host has more than lo, so the none/host comparison means something');
    assert.equal(resolv, await readFile('/etc/resolv.conf', 'utf8'));
  });

  test('writes to /etc/hosts and /etc/resolv.conf reach neither the host nor the rootfs', async () => {
    const hostHosts = await readFile('/etc/hosts', 'utf8');
    const r = await sh('echo "10.9.9.9 injected" >> /etc/hosts && grep -c injected /etc/hosts && grep -w kiln /etc/hosts');
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(await readFile('/etc/hosts', 'utf8'), hostHosts);
    assert.equal(existsSync(path.join(rootfs, 'etc', 'hosts')), false);
  });

  test('bind mounts read-only and read-write', async () => {
    const ro = path.join(work, 'ro-src');
    const rw = path.join(work, 'rw-src');
    await mkdir(ro);
    await mkdir(rw);
    await writeFile(path.join(ro, 'f'), 'from-host\n');
    const r = await sh('cat /mnt/ro/f; touch /mnt/ro/x 2>/dev/null || echo ro-denied; echo written > /mnt/rw/new', {
      mounts: [
        { type: 'bind', source: ro, destination: '/mnt/ro', readonly: true },
        { type: 'bind', source: rw, destination: '/mnt/rw' },
      ],
    });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, 'from-host\nro-denied\n');
    assert.equal(existsSync(path.join(ro, 'x')), false);
    assert.equal(await readFile(path.join(rw, 'new'), 'utf8'), 'written\n');
    assert.equal(existsSync(path.join(rootfs, 'mnt')), false, 'mount-point stubs are removed');
  });

  test('tmpfs mount is a fresh tmpfs whose content is discarded', async () => {
    const r = await sh('grep " /scratch " /proc/mounts | cut -d" " -f3; echo data > /scratch/f && cat /scratch/f', {
      mounts: [{ type: 'tmpfs', destination: '/scratch', options: ['size=16m'] }],
    });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, 'tmpfs\ndata\n');
    assert.equal(existsSync(path.join(rootfs, 'scratch')), false);
  });

  test('mount stubs are removed, but a stub the process filled is kept', async () => {
    const bare = path.join(work, 'bare');
    await mkdir(bare);
    const r = await exec.run({
      rootfs,
      args: ['/bin/sh', '-c', 'test -d /proc/self && test -c /dev/null && echo hi > /cache/kept'],
      env: [],
      cwd: '/',
      mounts: [
        { type: 'tmpfs', destination: '/cache/tmp' },
        { type: 'bind', source: bare, destination: '/deep/a/b' },
      ],
    });
    assert.equal(r.exitCode, 0);
    for (const p of ['proc', 'dev', 'sys', 'etc/hosts', 'etc/resolv.conf', 'deep', 'cache/tmp']) {
      assert.equal(existsSync(path.join(rootfs, p)), false, `/${p} should not be left in the rootfs`);
    }
    assert.equal(await readFile(path.join(rootfs, 'cache', 'kept'), 'utf8'), 'hi\n');
    assert.ok(existsSync(path.join(rootfs, 'etc', 'passwd')), 'pre-existing files are untouched');
    await rm(path.join(rootfs, 'cache'), { recursive: true });
  });

  test('existing mount points are left in place', async () => {
    await mkdir(path.join(rootfs, 'proc'));
    await writeFile(path.join(rootfs, 'etc', 'hosts'), '');
    try {
      assert.equal((await sh('true')).exitCode, 0);
      assert.ok(existsSync(path.join(rootfs, 'proc')));
      assert.ok(existsSync(path.join(rootfs, 'etc', 'hosts')));
    } finally {
      await rm(path.join(rootfs, 'proc'), { recursive: true });
      await rm(path.join(rootfs, 'etc', 'hosts'));
    }
  });

  test('a missing executable is a clear start error', async () => {
    await assert.rejects(
      exec.run({ rootfs, args: ['no-such-tool'], env: [], cwd: '/', onStderr: () => {} }),
      (e: { code?: string; message?: string }) => e.code === 'ERR_KILN_EXEC_START' && /no-such-tool/.test(e.message ?? ''),
    );
    assert.deepEqual(listContainers(), []);
  });

  test('a working directory that is a file is a clear start error', async () => {
    await writeFile(path.join(rootfs, 'afile'), 'x');
    try {
      await assert.rejects(sh('pwd', { cwd: '/afile' }), (e: { code?: string; message?: string }) =>
        e.code === 'ERR_KILN_EXEC_START' && /\/afile is not a directory/.test(e.message ?? ''));
    } finally {
      await rm(path.join(rootfs, 'afile'));
    }
  });

  test('a throwing output callback fails the run after the container is gone', async () => {
    await assert.rejects(sh('echo x', { onStdout: () => { throw new Error('sink broke'); } }), /sink broke/);
    assert.deepEqual(listContainers(), []);
  });

  test('abort kills the container promptly and leaves nothing behind', async () => {
    const ac = new AbortController();
    const started = Date.now();
    const p = sh('echo started; sleep 100', { signal: ac.signal, onStdout: () => ac.abort() });
    await assert.rejects(p, { name: 'AbortError' });
    assert.ok(Date.now() - started < 30_000, `abort did not end the run: ${Date.now() - started} ms`);
    assert.deepEqual(listContainers(), []);
    assert.deepEqual(await readdir(path.join(stateDir, 'bundles')), []);
    assert.equal(existsSync(path.join(rootfs, 'proc')), false);
    const already = AbortSignal.abort();
    await assert.rejects(sh('true', { signal: already }), { name: 'AbortError' });
  });

  test('abort at any moment of container start still removes the container', async () => {
    for (const delayMs of [0, 5, 15, 30, 45, 60]) {
      const ac = new AbortController();
      const p = sh('sleep 100', { signal: ac.signal });
      setTimeout(() => ac.abort(), delayMs);
      await assert.rejects(p, { name: 'AbortError' }, `abort after ${delayMs} ms`);
      assert.deepEqual(listContainers(), [], `abort after ${delayMs} ms`);
    }
    assert.deepEqual(await readdir(path.join(stateDir, 'bundles')), []);
  });

  test('two concurrent runs', async () => {
    const started = Date.now();
    const [a, b] = await Promise.all([sh('sleep 1; echo A; exit 4'), sh('sleep 1; echo B', { network: 'none' })]);
    assert.deepEqual([a.exitCode, a.stdout, b.exitCode, b.stdout], [4, 'A\n', 0, 'B\n']);
    assert.ok(Date.now() - started < 1900, 'the runs overlapped');
    assert.deepEqual(listContainers(), []);
  });

  test('cleanup removes containers of dead kiln processes and keeps live ones', async () => {
    const deadPid = spawnSync('true').pid!;
    const id = `kiln-${deadPid}-1-00ff`;
    const bundle = path.join(stateDir, 'bundles', id);
    await mkdir(bundle, { recursive: true });
    const spec = createSpec({
      rootfs,
      args: ['/bin/sleep', '100'],
      env: [],
      cwd: '/',
      user: { uid: 0, gid: 0, additionalGids: [0] },
      network: 'none',
      nofileLimit: expectedNofile(),
    });
    await writeFile(path.join(bundle, 'config.json'), JSON.stringify(spec));
    await writeFile(path.join(bundle, 'kiln-record.json'), JSON.stringify({ rootfs, stubs: ['/proc', '/dev', '/sys'] }));
    execFileSync(RUNC, ['--root', path.join(stateDir, 'runc'), 'create', '--bundle', bundle, id], { stdio: 'ignore' });
    assert.equal(listContainers().length, 1);

    const live = sh('sleep 1; echo survived');
    await new Promise((r) => setTimeout(r, 300));
    await exec.cleanup();
    assert.deepEqual((listContainers() as { id: string }[]).map((c) => c.id).filter((c) => c === id), []);
    assert.equal(existsSync(bundle), false);
    assert.equal(existsSync(path.join(rootfs, 'proc')), false);
    const r = await live;
    assert.deepEqual([r.exitCode, r.stdout], [0, 'survived\n']);
    assert.deepEqual(listContainers(), []);
  });
});

describe('RuncExecutor without a runtime', () => {
  test('a missing runtime (or not being root) is ERR_KILN_EXEC_RUNTIME', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'kiln-exec-'));
    try {
      const exec = createRuncExecutor({ stateDir: dir, runtime: path.join(dir, 'no-runc') });
      await assert.rejects(exec.run({ rootfs: dir, args: ['true'], env: [], cwd: '/' }), (e: { code?: string; message?: string }) =>
        e.code === 'ERR_KILN_EXEC_RUNTIME' && /(not found|root)/.test(e.message ?? ''));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
