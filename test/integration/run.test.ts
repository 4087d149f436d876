/** `kiln run` and `kiln volume`: containers from local images with no daemon, named volumes that persist; -i, -t, -d, -p, --name, ps/logs/stop/rm. */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { request } from 'node:http';
import path from 'node:path';
import { cleanup, integrationBlocker, kilnBin, kilnSync, newContext, newRoot, requireIntegration, spawnKiln, waitForOutput } from '../helpers/kiln.js';
import { freePort } from '../helpers/registry.js';

describe('kiln run', { concurrency: false }, () => {
  let root = '';
  before(async () => {
    if (integrationBlocker()) return;
    root = await newRoot();
  });
  after(async () => {
    if (!root) return;
    // containers a failed test left running
    const left = kilnSync(['ps', '--root', root, '-a', '-q']).stdout.split('\n').filter((l) => l !== '');
    if (left.length) kilnSync(['rm', '--root', root, '-f', ...left]);
    await cleanup(root);
  });
  const run = (...args: string[]): ReturnType<typeof kilnSync> => kilnSync(['run', '--root', root, ...args]);

  test('-v pkgs:/cache twice: the second run finds what the first cached', (t) => {
    if (!requireIntegration(t)) return;
    const first = run('-v', 'pkgs:/cache', 'busybox', 'sh', '-c', 'mkdir -p /cache/pip && echo wheel-bytes > /cache/pip/pkg.whl && echo stored');
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, 'stored\n');
    const second = run('-v', 'pkgs:/cache', '--rm', 'busybox', 'cat', '/cache/pip/pkg.whl');
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, 'wheel-bytes\n');
    const ls = kilnSync(['volume', 'ls', '--root', root, '-q']);
    assert.equal(ls.stdout, 'pkgs\n');
    const du = JSON.parse(kilnSync(['volume', 'du', '--root', root, '--format', 'json']).stdout) as Array<{ name: string; size: number }>;
    assert.ok(du[0]!.size > 0);
    const [info] = JSON.parse(kilnSync(['volume', 'inspect', '--root', root, 'pkgs']).stdout) as Array<{ mountpoint: string }>;
    assert.equal(info!.mountpoint, path.join(root, 'volumes', 'pkgs', '_data'));
    assert.ok(existsSync(path.join(info!.mountpoint, 'pip', 'pkg.whl')));
  });

  test('exit code, -e, -w, -u, --network none; the container\'s own writes are discarded', (t) => {
    if (!requireIntegration(t)) return;
    const r = run('-e', 'GREETING=hi', '-w', '/tmp', '-u', '1000:1000', 'busybox', 'sh', '-c', 'echo "$GREETING $(pwd) $(id -u):$(id -g)"; touch /tmp/left; exit 7');
    assert.equal(r.code, 7, r.stderr);
    assert.equal(r.stdout, 'hi /tmp 1000:1000\n');
    const after = run('busybox', 'sh', '-c', 'ls /tmp/left 2>/dev/null || echo gone');
    assert.equal(after.stdout, 'gone\n');
    const net = run('--network', 'none', 'busybox', 'ls', '/sys/class/net');
    assert.equal(net.stdout, 'lo\n');
    const missing = run('no-such-image:1', 'true');
    assert.equal(missing.code, 125);
    assert.match(missing.stderr, /not in the local store/);
  });

  test('volume create/rm; a volume in use is not removed', async (t) => {
    if (!requireIntegration(t)) return;
    assert.equal(kilnSync(['volume', 'create', '--root', root, 'busy']).code, 0);
    assert.match(kilnSync(['volume', 'create', '--root', root, 'busy']).stderr, /already exists/);
    const p = spawnKiln(['run', '--root', root, '-v', 'busy:/data', 'busybox', 'sleep', '3']);
    const users = path.join(root, 'volumes', 'busy', 'users');
    const deadline = Date.now() + 20_000;
    while ((!existsSync(users) || readdirSync(users).length === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const refused = kilnSync(['volume', 'rm', '--root', root, 'busy']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /in use/);
    await new Promise((r) => p.on('close', r));
    const rm = kilnSync(['volume', 'rm', '--root', root, 'busy']);
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal(existsSync(path.join(root, 'volumes', 'busy')), false);
  });

  const ps = (...args: string[]): string[] => kilnSync(['ps', '--root', root, ...args]).stdout.split('\n').filter((l) => l !== '');
  const record = (id: string): { supervisor: { pid: number }; process?: { pid: number }; state: string } =>
    JSON.parse(readFileSync(path.join(root, 'containers', id, 'state.json'), 'utf8')) as { supervisor: { pid: number }; process?: { pid: number }; state: string };

  test('-i: stdin reaches the container; without it the container reads nothing', (t) => {
    if (!requireIntegration(t)) return;
    const piped = kilnSync(['run', '--root', root, '-i', 'busybox', 'cat'], { input: 'hi\n' });
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(piped.stdout, 'hi\n');
    const ignored = kilnSync(['run', '--root', root, 'busybox', 'cat'], { input: 'hi\n' });
    assert.equal(ignored.code, 0, ignored.stderr);
    assert.equal(ignored.stdout, '');
  });

  test('-t: a real pty inside (tty names /dev/pts, test -t 0 holds); -it runs an interactive shell', async (t) => {
    if (!requireIntegration(t)) return;
    const r = run('-t', 'busybox', 'sh', '-c', 'tty; test -t 0 && test -t 1 && echo both-ttys; echo "TERM=$TERM"; exit 3');
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout, /^\/dev\/pts\/\d+\r\nboth-ttys\r\nTERM=xterm\r\n$/);
    const plain = run('busybox', 'sh', '-c', 'test -t 0 || echo no-tty');
    assert.equal(plain.stdout, 'no-tty\n');
    // -it needs a terminal on kiln's stdin, as docker's: util-linux script gives this test one
    const piped = kilnSync(['run', '--root', root, '-it', 'busybox', 'cat'], { input: 'hi\n' });
    assert.equal(piped.code, 125);
    assert.match(piped.stderr, /not a TTY/);
    const line = [kilnBin, '--root', root, 'run', '-it', 'busybox', 'sh'].map((w) => `'${w}'`).join(' ');
    const term = spawn('script', ['--quiet', '--return', '--command', line, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, SHELL: '/bin/sh' } });
    const closed = new Promise<number>((resolve) => term.on('close', (code) => resolve(code ?? -1)));
    await waitForOutput(term, '# ');
    term.stdin.write('echo $((6*7)); tty\n');
    const out = await waitForOutput(term, '/dev/pts/');
    term.stdin.write('exit 5\n');
    assert.equal(await closed, 5);
    assert.match(out, /\r\n42\r\n\/dev\/pts\/\d+/);
  });

  test('exit status: the container\'s, 127 not found, 126 not executable, 125 kiln\'s own errors', (t) => {
    if (!requireIntegration(t)) return;
    assert.equal(run('busybox', 'sh', '-c', 'exit 9').code, 9);
    const missing = run('busybox', 'no-such-command');
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /no-such-command.*not found/);
    assert.equal(run('busybox', '/etc').code, 126);
    assert.equal(run('no-such-image:1', 'true').code, 125);
    assert.equal(run('-v', 'bad', 'busybox', 'true').code, 125);
  });

  test('a foreground container is listed while it runs and can be stopped from elsewhere; Ctrl-C ends it with 130', async (t) => {
    if (!requireIntegration(t)) return;
    const fg = spawnKiln(['run', '--root', root, '--name', 'fore', 'busybox', 'sh', '-c', 'echo up; exec sleep 1000']);
    const exited = new Promise<number>((resolve) => fg.on('close', (code) => resolve(code ?? -1)));
    await waitForOutput(fg, 'up');
    assert.match(ps().find((l) => l.endsWith(' fore'))!, /busybox +"sh -c echo up; exec…" .+ Up /);
    assert.equal(kilnSync(['stop', '--root', root, '-t', '1', 'fore']).code, 0);
    assert.equal(await exited, 137);
    assert.deepEqual(ps('-a', '-q'), [], 'a foreground container leaves no record');
    const again = spawnKiln(['run', '--root', root, 'busybox', 'sh', '-c', 'echo up; exec sleep 1000']);
    const closed = new Promise<number>((resolve) => again.on('close', (code) => resolve(code ?? -1)));
    await waitForOutput(again, 'up');
    again.kill('SIGINT');
    assert.equal(await closed, 130);
    assert.deepEqual(ps('-a', '-q'), []);
  });

  test('-d, ps, logs, stop, rm: a detached container runs on, logs, stops on SIGTERM and keeps its writes until rm', async (t) => {
    if (!requireIntegration(t)) return;
    const script = 'echo started; echo data > /kept; trap "echo got-term; exit 3" TERM; while :; do sleep 1; done';
    const d = run('-d', '--name', 'web', 'busybox', 'sh', '-c', script);
    assert.equal(d.code, 0, d.stderr);
    const id = d.stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const listed = ps();
    assert.match(listed[0]!, /^CONTAINER ID +IMAGE +COMMAND +CREATED +STATUS +PORTS +NAMES$/);
    assert.match(listed[1]!, new RegExp(`^${id.slice(0, 12)} +busybox +"sh -c echo started;…" +.+ +Up .+ web$`));
    assert.deepEqual(ps('-q'), [id.slice(0, 12)]);
    const [json] = ps('--format', 'json').map((l) => JSON.parse(l) as { ID: string; Names: string; State: string });
    assert.deepEqual([json!.ID, json!.Names, json!.State], [id.slice(0, 12), 'web', 'running']);
    // another kiln command's crash cleanup must leave a live detached container alone
    assert.equal(run('busybox', 'true').code, 0);
    const deadline = Date.now() + 20_000;
    while (!kilnSync(['logs', '--root', root, 'web']).stdout.includes('started') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(kilnSync(['logs', '--root', root, id.slice(0, 8)]).stdout, 'started\n');
    const follow = spawnKiln(['logs', '--root', root, '-f', 'web']);
    const followed = new Promise<string>((resolve) => {
      let out = '';
      follow.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      follow.on('close', () => resolve(out));
    });
    const stop = kilnSync(['stop', '--root', root, '-t', '20', 'web']);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(stop.stdout, 'web\n');
    assert.equal(await followed, 'started\ngot-term\n');
    assert.deepEqual(ps('-q'), []);
    assert.match(ps('-a')[1]!, /Exited \(3\) .+ web$/);
    assert.equal(readFileSync(path.join(root, 'containers', id, 'upper', 'kept'), 'utf8'), 'data\n');
    // the name stays taken until rm
    const again = run('-d', '--name', 'web', 'busybox', 'true');
    assert.equal(again.code, 125);
    assert.match(again.stderr, /name "web" is already in use/);
    const rm = kilnSync(['rm', '--root', root, 'web']);
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal(existsSync(path.join(root, 'containers', id)), false);
    assert.deepEqual(ps('-a', '-q'), []);
    assert.match(kilnSync(['logs', '--root', root, 'web']).stderr, /no such container: web/);
  });

  test('--name collision with a running container; rm refuses it unless -f; stop -t kills one that ignores SIGTERM; --rm', async (t) => {
    if (!requireIntegration(t)) return;
    const first = run('-d', '--name', 'busy', 'busybox', 'sleep', '1000');
    assert.equal(first.code, 0, first.stderr);
    const clash = run('--name', 'busy', 'busybox', 'true');
    assert.equal(clash.code, 125);
    assert.match(clash.stderr, /the container name "busy" is already in use by container "[0-9a-f]{64}"/);
    assert.equal(run('--name', '-bad', 'busybox', 'true').code, 125);
    const refused = kilnSync(['rm', '--root', root, 'busy']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /is running/);
    // sleep as the namespace's init has no SIGTERM handler: only the SIGKILL after -t ends it (128 + 9)
    const stop = kilnSync(['stop', '--root', root, '-t', '1', 'busy']);
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(ps('-a').find((l) => l.endsWith(' busy'))!, /Exited \(137\)/);
    assert.equal(kilnSync(['rm', '--root', root, 'busy']).code, 0);
    const second = run('-d', '--name', 'busy', 'busybox', 'sleep', '1000');
    const id = second.stdout.trim();
    const forced = kilnSync(['rm', '--root', root, '-f', 'busy']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(existsSync(path.join(root, 'containers', id)), false);
    const auto = run('-d', '--rm', 'busybox', 'true');
    assert.equal(auto.code, 0, auto.stderr);
    const autoId = auto.stdout.trim();
    const deadline = Date.now() + 20_000;
    while (existsSync(path.join(root, 'containers', autoId)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(existsSync(path.join(root, 'containers', autoId)), false, '--rm removed the exited container');
  });

  test('rmi refuses an image a container uses (running or stopped) with ERR_KILN_IMAGE_IN_USE unless -f', (t) => {
    if (!requireIntegration(t)) return;
    const k = (...args: string[]): ReturnType<typeof kilnSync> => kilnSync([args[0]!, '--root', root, ...args.slice(1)]);
    assert.equal(k('tag', 'busybox', 'inuse:1').code, 0);
    assert.equal(k('tag', 'busybox', 'spare:1').code, 0);
    const c = run('-d', '--name', 'user-of-inuse', 'inuse:1', 'sleep', '1000');
    assert.equal(c.code, 0, c.stderr);
    const running = k('rmi', 'inuse:1');
    assert.equal(running.code, 1);
    assert.match(running.stderr, /ERR_KILN_IMAGE_IN_USE/);
    assert.match(running.stderr, /image "inuse:1" is used by container user-of-inuse \([0-9a-f]{12}, running\)/);
    assert.match(running.stderr, /kiln rm/);
    assert.doesNotMatch(running.stderr, /\n\s+at /);
    // the same image under a name no container uses goes as before
    assert.equal(k('rmi', 'spare:1').code, 0);
    assert.equal(k('stop', '-t', '1', 'user-of-inuse').code, 0);
    const stopped = k('rmi', 'inuse:1');
    assert.equal(stopped.code, 1);
    assert.match(stopped.stderr, /used by container user-of-inuse \([0-9a-f]{12}, exited\)/);
    assert.ok(k('images', '-q').stdout.length > 0);
    assert.match(k('images').stdout, /inuse:1/);
    const forced = k('rmi', '-f', 'inuse:1');
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(forced.stdout, 'Untagged: inuse:1\n');
    assert.equal(k('rm', 'user-of-inuse').code, 0);
  });

  test('a running container keeps its image\'s layers: prune -a during its life frees nothing it needs; after rm it does', async (t) => {
    if (!requireIntegration(t)) return;
    const k = (...args: string[]): ReturnType<typeof kilnSync> => kilnSync([args[0]!, '--root', root, ...args.slice(1)]);
    const ctx = await newContext({ Dockerfile: 'FROM busybox:latest\nRUN echo leased > /leased\n' });
    try {
      assert.equal(k('build', '-q', '--no-daemon', '-t', 'leased:1', ctx).code, 0);
      const snaps = (): string[] => readdirSync(path.join(root, 'snapshots')).filter((n) => n !== 'empty').sort();
      const before = snaps();
      const c = run('-d', '--name', 'holder', 'leased:1', 'sh', '-c', 'while cat /leased > /dev/null; do sleep 0.1; done; echo lost; exit 3');
      assert.equal(c.code, 0, c.stderr);
      assert.equal(k('rmi', '-f', 'leased:1').code, 0);
      const pruned = k('prune', '-a', '-f');
      assert.equal(pruned.code, 0, pruned.stderr);
      // a container's lease is not a running build: prune does not hold back what no one uses
      assert.doesNotMatch(pruned.stdout, /running builds/);
      await new Promise((r) => setTimeout(r, 500));
      assert.match(ps('-a').find((l) => l.endsWith(' holder'))!, / Up /);
      const during = snaps();
      for (const s of before) assert.ok(during.includes(s), `snapshot ${s} deleted while the container ran`);
      assert.equal(k('rm', '-f', 'holder').code, 0);
      assert.equal(k('prune', '-a', '-f').code, 0);
      assert.ok(snaps().length < before.length, `prune after rm freed the image's snapshots (${before.length} → ${snaps().length})`);
    } finally {
      await cleanup(ctx);
    }
  });

  test('a detached container whose supervisor was killed shows as Exited (255), and the next kiln command removes its process', async (t) => {
    if (!requireIntegration(t)) return;
    const d = run('-d', '--name', 'orphan', 'busybox', 'sleep', '1000');
    assert.equal(d.code, 0, d.stderr);
    const rec = record(d.stdout.trim());
    assert.equal(rec.state, 'running');
    process.kill(rec.supervisor.pid, 'SIGKILL');
    const deadline = Date.now() + 20_000;
    while (!ps('-a').some((l) => /Exited \(255\).+orphan$/.test(l)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.match(ps('-a').find((l) => l.endsWith(' orphan'))!, /Exited \(255\)/);
    // ps opened the state root: its cleanup killed the container the dead supervisor left
    while (processAlive(rec.process!.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(processAlive(rec.process!.pid), false);
    assert.equal(kilnSync(['rm', '--root', root, 'orphan']).code, 0);
  });

  test('-p HOST:CONTAINER: forwarded into an isolated network; ignored with a warning on the host network', async (t) => {
    if (!requireIntegration(t)) return;
    const port = await freePort();
    const serve = 'while :; do printf "HTTP/1.0 200 OK\\r\\n\\r\\nfrom-the-container\\n" | nc -l -p 8000; done';
    const d = run('-d', '--network', 'isolated', '-p', `127.0.0.1:${port}:8000`, '--name', 'srv', 'busybox', 'sh', '-c', serve);
    assert.equal(d.code, 0, d.stderr);
    assert.match(ps().find((l) => l.endsWith(' srv'))!, new RegExp(`127\\.0\\.0\\.1:${port}->8000/tcp`));
    let body = '';
    const deadline = Date.now() + 20_000;
    while (!body.includes('from-the-container') && Date.now() < deadline) {
      body = await httpGet(port).catch(() => '');
      if (!body) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(body, 'from-the-container\n');
    assert.equal(kilnSync(['rm', '--root', root, '-f', 'srv']).code, 0);
    const host = run('-p', '8080:80', 'busybox', 'true');
    assert.equal(host.code, 0, host.stderr);
    assert.match(host.stderr, /WARNING: Published ports are discarded when using host network mode/);
    assert.equal(run('-p', '80', 'busybox', 'true').code, 125);
  });
});

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function httpGet(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}
