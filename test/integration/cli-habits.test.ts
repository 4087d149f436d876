/**
 * Every output and every mistake (issue 15): closed pipes end quietly with status 0; unknown or unused values get a
 * warning or an error (an unconsumed build arg with the declared name it nearly matches, `--build-arg =x`, an
 * unknown `--format`, `name=` of `--output type=docker`, `kiln load -t` on a named archive, a missing `--secret`
 * file, `--platform`); an unknown flag gets a one-line suggestion and a pointer to the command's help; template load
 * errors say what went wrong; a state root the user cannot write says whose it is. All through the real `bin/kiln`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { skipWithoutDockerd, startDockerd } from '../helpers/dockerd.js';
import { startServe } from '../helpers/serve.js';
import { cleanup, imageFiles, integrationBlocker, kiln, kilnBin, newContext, newRoot, readImage, repoRoot, requireIntegration } from '../helpers/kiln.js';

/** `bash -c SCRIPT` → stdout, stderr, and the exit status of the pipeline's first command. */
function pipeline(script: string): { stdout: string; stderr: string; first: number } {
  const r = spawnSync('bash', ['-c', `${script}; echo "STATUS=\${PIPESTATUS[0]}" >&2`], { encoding: 'utf8' });
  const m = /STATUS=(\d+)\s*$/.exec(r.stderr);
  return { stdout: r.stdout, stderr: r.stderr.replace(/STATUS=\d+\s*$/, ''), first: m ? Number(m[1]) : -1 };
}

describe('kiln: every output and every mistake', { concurrency: false }, () => {
  let root = '';
  let ctx = '';
  let tmp = '';

  before(async () => {
    if (integrationBlocker()) return;
    root = await newRoot();
    ctx = await newContext({ Dockerfile: 'FROM busybox:latest\nARG GREETING=none\nRUN echo "$GREETING" > /greeting\n', 'secret.txt': 's3cret\n' });
    tmp = mkdtempSync(path.join(tmpdir(), 'kiln-habits-'));
    // enough names that a listing is more than one line, history and cache entries to list
    for (let i = 0; i < 30; i++) assert.equal((await kiln(['tag', '--root', root, 'busybox:latest', `many/name-${i}:latest`])).code, 0);
    assert.equal((await kiln(['build', '--root', root, '-q', ctx])).code, 0);
  });

  after(async () => {
    await cleanup(...[root, ctx, tmp].filter(Boolean));
  });

  test('a closed pipe ends quietly: `kiln images | head -1` prints one line, nothing on stderr, status 0', (t) => {
    if (!requireIntegration(t)) return;
    for (const cmd of ['images', 'history ls', 'cache ls', 'volume ls', '--help']) {
      const head = pipeline(`'${kilnBin}' ${cmd} --root '${root}' | head -1`);
      assert.equal(head.stdout.split('\n').filter(Boolean).length, 1, `${cmd}: ${head.stdout}`);
      assert.equal(head.stderr, '', `${cmd} | head -1 wrote to stderr`);
      assert.equal(head.first, 0, `${cmd} | head -1`);
      // a reader that is gone before kiln writes anything
      const gone = pipeline(`'${kilnBin}' ${cmd} --root '${root}' | true`);
      assert.equal(gone.stderr, '', `${cmd} | true wrote to stderr`);
      assert.equal(gone.first, 0, `${cmd} | true`);
    }
  });

  test('an undeclared build arg warns as BuildKit does and suggests the declared name; declared and proxy args do not', async (t) => {
    if (!requireIntegration(t)) return;
    const typo = await kiln(['build', '--root', root, '--progress=plain', '--build-arg', 'GREETNG=hi', '--build-arg', 'HTTP_PROXY=http://127.0.0.1:9', ctx]);
    assert.equal(typo.code, 0, typo.stderr);
    assert.match(typo.stderr, /\[Warning\] One or more build-args \[GREETNG\] were not consumed \(GREETNG → did you mean GREETING\?\)/);
    assert.doesNotMatch(typo.stderr, /HTTP_PROXY\]|\[HTTP_PROXY/);
    const ok = await kiln(['build', '--root', root, '--progress=plain', '--build-arg', 'GREETING=hi', ctx]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.doesNotMatch(ok.stderr, /were not consumed/);
  });

  test('`--build-arg =x` and other malformed values are errors naming the value', async (t) => {
    if (!requireIntegration(t)) return;
    const empty = await kiln(['build', '--root', root, '--build-arg', '=x', ctx]);
    assert.equal(empty.code, 1);
    assert.match(empty.stderr, /--build-arg "=x": the name before = is empty/);
    assert.doesNotMatch(empty.stderr, /\n\s+at /);
    const fmt = await kiln(['images', '--root', root, '--format', 'yaml']);
    assert.notEqual(fmt.code, 0);
    assert.match(fmt.stderr, /argument 'yaml' is invalid\. Allowed choices are table, json/);
    for (const cmd of [['cache', 'ls'], ['volume', 'ls']]) {
      const r = await kiln([...cmd, '--root', root, '--format', 'xml']);
      assert.notEqual(r.code, 0, `${cmd.join(' ')} --format xml`);
    }
    const key = await kiln(['build', '--root', root, '-o', `type=docker,dest=${path.join(tmp, 'k.tar')},nmae=x:1`, ctx]);
    assert.equal(key.code, 1);
    assert.match(key.stderr, /unknown key "nmae"/);
  });

  test('`--output type=docker,name=x:1` names the image in the archive (read by skopeo)', async (t) => {
    if (!requireIntegration(t)) return;
    const dest = path.join(tmp, 'named.tar');
    const r = await kiln(['build', '--root', root, '-t', 'other:2', '-o', `type=docker,dest=${dest},name=x:1`, ctx]);
    assert.equal(r.code, 0, r.stderr);
    const manifest = JSON.parse(spawnSync('tar', ['-xOf', dest, 'manifest.json'], { encoding: 'utf8' }).stdout) as Array<{ RepoTags: string[] }>;
    assert.deepEqual(manifest[0]!.RepoTags, ['x:1']);
    // skopeo finds it by that name: the name `docker load` gives it
    const sk = spawnSync('skopeo', ['inspect', `docker-archive:${dest}:x:1`], { encoding: 'utf8' });
    assert.equal(sk.status, 0, sk.stderr);
    assert.equal((JSON.parse(sk.stdout) as { Architecture: string }).Architecture, 'amd64');
  });

  test('`docker load` of `--output type=docker,name=x:1` gives x:1 with the Dockerfile\'s Env and Cmd (private dockerd)', async (t) => {
    if (!requireIntegration(t) || skipWithoutDockerd(t)) return;
    const dctx = await newContext({ Dockerfile: 'FROM busybox:latest\nENV KILN_HABIT=docker-load\nRUN echo hi > /hi\nCMD ["cat", "/hi"]\n' });
    const dest = path.join(tmp, 'for-docker.tar');
    const daemon = await startDockerd();
    try {
      const r = await kiln(['build', '--root', root, '-o', `type=docker,dest=${dest},name=x:1`, dctx]);
      assert.equal(r.code, 0, r.stderr);
      const load = daemon.docker(['load', '-i', dest]);
      assert.equal(load.status, 0, load.stderr);
      assert.match(load.stdout, /Loaded image: x:1/);
      const ins = daemon.docker(['image', 'inspect', 'x:1']);
      assert.equal(ins.status, 0, ins.stderr);
      const cfg = (JSON.parse(ins.stdout) as Array<{ RepoTags: string[]; Architecture: string; Config: { Env: string[]; Cmd: string[] } }>)[0]!;
      assert.deepEqual(cfg.RepoTags, ['x:1']);
      assert.equal(cfg.Architecture, 'amd64');
      assert.ok(cfg.Config.Env.includes('KILN_HABIT=docker-load'), JSON.stringify(cfg.Config.Env));
      assert.deepEqual(cfg.Config.Cmd, ['cat', '/hi']);
    } finally {
      await daemon.stop();
      await cleanup(dctx);
    }
  });

  test('a build handed to a local kiln serve prints the same `image … tagged NAME` line as an in-process build', async (t) => {
    if (!requireIntegration(t)) return;
    const sroot = await newRoot();
    const server = await startServe(sroot);
    try {
      const tagLine = (stderr: string): string => (/^image sha256:[0-9a-f]{64}( tagged .*)?$/m.exec(stderr) ?? [''])[0];
      const args = ['--root', sroot, 'build', '--progress=plain', '-t', 'plain', '-t', 'docker.io/library/other:2', ctx];
      const handed = await kiln(args);
      assert.equal(handed.code, 0, handed.stderr);
      assert.match(handed.stderr, /handing the build to kiln serve/);
      assert.match(handed.stderr, /^image sha256:[0-9a-f]{64} tagged plain:latest, other:2$/m);
      const inproc = await kiln([...args.slice(0, 3), '--no-daemon', ...args.slice(3)]);
      assert.equal(inproc.code, 0, inproc.stderr);
      assert.doesNotMatch(inproc.stderr, /handing/);
      assert.equal(tagLine(handed.stderr), tagLine(inproc.stderr));
      // the lean entry (the spelling it takes: -t NAME, --progress=plain) and the full CLI (-tNAME) agree too
      const full = await kiln(['--root', sroot, 'build', '--progress=plain', '-tplain', ctx]);
      assert.match(full.stderr, /handing the build to kiln serve/);
      assert.match(full.stderr, /^image sha256:[0-9a-f]{64} tagged plain:latest$/m);
      // --iidfile is applied after the hand-off; a flag the server cannot carry (--label) builds in this process
      const iid = path.join(tmp, 'handed.iid');
      const withIid = await kiln(['--root', sroot, 'build', '--progress=plain', '--iidfile', iid, ctx]);
      assert.match(withIid.stderr, /handing the build to kiln serve/);
      assert.match(readFileSync(iid, 'utf8'), /^sha256:[0-9a-f]{64}$/);
      const labelled = await kiln(['--root', sroot, 'build', '--progress=plain', '--label', 'habit=kept', '-t', 'labelled', ctx]);
      assert.equal(labelled.code, 0, labelled.stderr);
      assert.doesNotMatch(labelled.stderr, /handing/);
      const ins = await kiln(['--root', sroot, 'inspect', '-f', '{{json .Config.Labels}}', 'labelled']);
      assert.match(ins.stdout, /"habit":"kept"/);
    } finally {
      await server.stop();
      await cleanup(sroot);
    }
  });

  test('`kiln load -t` on an archive that names its image adds the name instead of dropping it', async (t) => {
    if (!requireIntegration(t)) return;
    const dest = path.join(tmp, 'named.tar');
    const other = await newRoot();
    try {
      const r = await kiln(['load', '--root', other, '-t', 'mine:3', dest]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Loaded image: x:1, mine:3/);
      const names = (await kiln(['images', '--root', other, '--format', 'json'])).stdout;
      const list = (JSON.parse(names) as Array<{ name: string }>).map((x) => x.name);
      assert.ok(list.includes('x:1') && list.includes('mine:3'), names);
    } finally {
      await cleanup(other);
    }
  });

  test('a --secret whose source file does not exist is an error before anything runs', async (t) => {
    if (!requireIntegration(t)) return;
    const missing = path.join(tmp, 'no-such-secret');
    const r = await kiln(['build', '--root', root, '--secret', `id=npmrc,src=${missing}`, ctx]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`--secret id=npmrc: source file "${missing}" does not exist`));
    const ok = await kiln(['build', '--root', root, '-q', '--secret', `id=npmrc,src=${path.join(ctx, 'secret.txt')}`, ctx]);
    assert.equal(ok.code, 0, ok.stderr);
  });

  test('--platform: the host platform builds and is recorded; a foreign or malformed one exits non-zero saying why', async (t) => {
    if (!requireIntegration(t)) return;
    const host = await kiln(['build', '--root', root, '-q', '--platform', 'linux/amd64', ctx]);
    assert.equal(host.code, 0, host.stderr);
    const { config } = await readImage(root, host.stdout.trim());
    assert.equal(config.architecture, 'amd64');
    assert.equal(config.os, 'linux');
    const arm = await kiln(['build', '--root', root, '--platform', 'linux/arm64', ctx]);
    assert.equal(arm.code, 1);
    assert.match(arm.stderr, /--platform linux\/arm64: kiln builds only for this machine's platform, linux\/amd64/);
    const bogus = await kiln(['build', '--root', root, '--platform', 'bogus', ctx]);
    assert.equal(bogus.code, 1);
    assert.match(bogus.stderr, /--platform: "bogus" is not a platform/);
  });

  test('an unknown flag prints the one-line error, a suggestion, and `Run kiln build --help`, not the whole help', async (t) => {
    if (!requireIntegration(t)) return;
    const r = await kiln(['build', '--root', root, '--tagg', 'x', ctx]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /unknown option '--tagg'/);
    assert.match(r.stderr, /Did you mean --tag\?/);
    assert.match(r.stderr, /Run 'kiln build --help' for more information\./);
    assert.doesNotMatch(r.stderr, /Options:|Usage:/);
    assert.ok(r.stderr.trim().split('\n').length <= 3, r.stderr);
    const sub = await kiln(['history', 'lss', '--root', root]);
    assert.match(sub.stderr, /Run 'kiln history --help'/);
  });

  test('template load errors say what went wrong: the syntax error line, how to install kiln, where it threw', async (t) => {
    if (!requireIntegration(t)) return;
    const dir = path.join(tmp, 'templates');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'syntax.ts'), "const x = 1;\nexport default Template()\n  .fromImage('busybox:latest'\n  .copy(;\n");
    writeFileSync(path.join(dir, 'nomod.ts'), "import { Template } from 'kiln';\nexport default Template().fromImage('busybox:latest');\n");
    writeFileSync(path.join(dir, 'throws.ts'), "const ok = 1;\nthrow new Error('boom ' + ok);\n");
    const syntax = await kiln(['build', '--root', root, path.join(dir, 'syntax.ts')], { cwd: dir });
    assert.equal(syntax.code, 1);
    assert.match(syntax.stderr, /syntax\.ts:4:\d+: syntax error: Unexpected ";"/);
    assert.match(syntax.stderr, /4 \|\s+\.copy\(;/);
    const nomod = await kiln(['build', '--root', root, path.join(dir, 'nomod.ts')], { cwd: dir });
    assert.equal(nomod.code, 1);
    assert.match(nomod.stderr, /it imports "kiln", which is not installed where the file is/);
    assert.match(nomod.stderr, /npm install kiln/);
    const threw = await kiln(['build', '--root', root, path.join(dir, 'throws.ts')], { cwd: dir });
    assert.equal(threw.code, 1);
    assert.match(threw.stderr, /boom 1 \(thrown at .*throws\.ts:2:\d+\)/);
    for (const r of [syntax, nomod, threw]) assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test('a state root the user cannot write says whose it is and what to do', (t) => {
    if (!requireIntegration(t)) return;
    const locked = path.join(tmp, 'locked');
    mkdirSync(path.join(locked, 'tmp'), { recursive: true });
    chmodSync(tmp, 0o755);
    chmodSync(locked, 0o755);
    // as nobody: the directory is root's and read-only to others
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', kilnBin, 'images', '--root', locked], { encoding: 'utf8' });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`the state directory ${locked} is not writable by \\S+ \\(uid 65534\\): it belongs to root \\(uid 0\\) with mode 0755`));
    assert.match(r.stderr, /--root DIR or KILN_ROOT \(ERR_KILN_STATE_ROOT\)/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    assert.equal(readFileSync('/etc/passwd', 'utf8').includes(':65534:'), true);
  });

  test('docker habits: inspect / image inspect, version, build --label and --iidfile', async (t) => {
    if (!requireIntegration(t)) return;
    const iid = path.join(tmp, 'iid');
    const b = await kiln(['build', '--root', root, '-q', '-t', 'labelled:1', '--label', 'org.example.team=infra', '--label', 'flag', '--iidfile', iid, ctx]);
    assert.equal(b.code, 0, b.stderr);
    const { config, manifest } = await readImage(root, b.stdout.trim());
    assert.equal(config.config.Labels?.['org.example.team'], 'infra');
    assert.equal(config.config.Labels?.flag, '');
    assert.equal(readFileSync(iid, 'utf8'), manifest.config.digest);
    for (const cmd of [['inspect'], ['image', 'inspect']]) {
      const r = await kiln([...cmd, '--root', root, 'labelled:1']);
      assert.equal(r.code, 0, r.stderr);
      const [img] = JSON.parse(r.stdout) as Array<{ Id: string; RepoTags: string[]; Architecture: string; Os: string; Config: { Labels: Record<string, string> }; RootFS: { Layers: string[] }; Descriptor: { digest: string } }>;
      assert.equal(img!.Id, manifest.config.digest);
      assert.ok(img!.RepoTags.includes('labelled:1'));
      assert.equal(img!.Os, 'linux');
      assert.equal(img!.Config.Labels['org.example.team'], 'infra');
      assert.deepEqual(img!.RootFS.Layers, config.rootfs.diff_ids);
      assert.equal(img!.Descriptor.digest, b.stdout.trim());
    }
    const f = await kiln(['inspect', '--root', root, '-f', '{{.Os}}/{{.Architecture}} {{json .Config.Labels}}', 'labelled:1']);
    assert.equal(f.stdout, `linux/amd64 ${JSON.stringify(config.config.Labels)}\n`);
    const missing = await kiln(['inspect', '--root', root, 'no-such:1']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no-such/);
    const v = await kiln(['version', '--format', 'json']);
    assert.equal(v.code, 0, v.stderr);
    const info = JSON.parse(v.stdout) as { Version: string; Runtime: string };
    assert.equal(info.Version, (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version);
    assert.match(info.Runtime, /runc/);
  });

  test('--output type=local,dest=DIR and type=tar,dest=FILE write the final filesystem', async (t) => {
    if (!requireIntegration(t)) return;
    const dir = path.join(tmp, 'local-out');
    const tarFile = path.join(tmp, 'fs.tar');
    const r = await kiln(['build', '--root', root, '--build-arg', 'GREETING=exported', '-o', `type=local,dest=${dir}`, '-o', `type=tar,dest=${tarFile}`, ctx]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(path.join(dir, 'greeting'), 'utf8'), 'exported\n');
    assert.ok(lstatSync(path.join(dir, 'bin', 'sh')).isSymbolicLink(), 'links stay links');
    assert.equal(lstatSync(path.join(dir, 'tmp')).mode & 0o7777, 0o1777);
    const listing = spawnSync('tar', ['-tvf', tarFile], { encoding: 'utf8' }).stdout;
    assert.match(listing, /\.\/greeting$/m);
    assert.equal(spawnSync('tar', ['-xOf', tarFile, './greeting'], { encoding: 'utf8' }).stdout, 'exported\n');
    const bad = await kiln(['build', '--root', root, '-o', `type=local,dest=${dir},name=x:1`, ctx]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /name= has no meaning there/);
  });

  test('context from stdin (-: a Dockerfile or a tar) and -f - (the Dockerfile on stdin)', async (t) => {
    if (!requireIntegration(t)) return;
    const run = (args: string[], input: string | Buffer): { code: number; stdout: string; stderr: string } => {
      const r = spawnSync(kilnBin, args, { input, encoding: 'utf8' });
      return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
    };
    const df = run(['build', '--root', root, '-q', '-'], 'FROM busybox:latest\nRUN echo from-stdin > /s\n');
    assert.equal(df.code, 0, df.stderr);
    const files1 = await imageFiles(root, df.stdout.trim());
    assert.equal(files1.get('s')?.content, 'from-stdin\n');
    const tarred = spawnSync('tar', ['-C', ctx, '-czf', '-', '.']).stdout;
    const tc = run(['build', '--root', root, '-q', '--build-arg', 'GREETING=tarred', '-'], tarred);
    assert.equal(tc.code, 0, tc.stderr);
    assert.equal((await imageFiles(root, tc.stdout.trim())).get('greeting')?.content, 'tarred\n');
    const fdash = run(['build', '--root', root, '-q', '-f', '-', ctx], 'FROM busybox:latest\nCOPY secret.txt /copied\n');
    assert.equal(fdash.code, 0, fdash.stderr);
    assert.equal((await imageFiles(root, fdash.stdout.trim())).get('copied')?.content, 's3cret\n');
    const both = run(['build', '--root', root, '-f', '-', '-'], 'FROM busybox:latest\n');
    assert.equal(both.code, 1);
    assert.match(both.stderr, /cannot both be -/);
  });

  test('kiln completion bash completes commands, subcommands and flags from the real command tree', (t) => {
    if (!requireIntegration(t)) return;
    const complete = (words: string[]): string =>
      spawnSync('bash', ['-c', `source <('${kilnBin}' completion bash); COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _kiln; echo "\${COMPREPLY[@]}"`], { encoding: 'utf8' }).stdout.trim();
    assert.equal(complete(['kiln', 'bu']), 'build');
    assert.equal(complete(['kiln', 'build', '--ta']), '--tag --target');
    assert.equal(complete(['kiln', 'history', 'l']), 'ls logs');
    assert.equal(complete(['kiln', 'image', 'ins']), 'inspect');
    const zsh = spawnSync(kilnBin, ['completion', 'zsh'], { encoding: 'utf8' });
    assert.match(zsh.stdout, /^#compdef kiln/);
    const bad = spawnSync(kilnBin, ['completion', 'fish'], { encoding: 'utf8' });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /"fish" is not a supported shell/);
  });

  test('build --add-host, --ulimit and --shm-size reach RUN steps; bad values are errors', async (t) => {
    if (!requireIntegration(t)) return;
    const c = await newContext({ Dockerfile: 'FROM busybox:latest\nRUN grep -E "registry\\.local|v6host" /etc/hosts > /hosts; ulimit -n > /soft; ulimit -Hn > /hard; df -k /dev/shm | tail -1 | awk \'{print $2}\' > /shm\n' });
    try {
      const r = await kiln(['build', '--root', root, '-q', '--no-cache', '--ulimit', 'nofile=1024:2048', '--shm-size', '32m', '--add-host', 'registry.local:10.1.2.3', '--add-host', 'v6host=::1', c]);
      assert.equal(r.code, 0, r.stderr);
      const files = await imageFiles(root, r.stdout.trim());
      assert.equal(files.get('hosts')?.content, '10.1.2.3\tregistry.local\n::1\tv6host\n');
      assert.equal(files.get('soft')?.content, '1024\n');
      assert.equal(files.get('hard')?.content, '2048\n');
      assert.equal(files.get('shm')?.content, '32768\n');
      const d = await kiln(['build', '--root', root, '-q', '--no-cache', c]);
      assert.equal(d.code, 0, d.stderr);
      const plain = await imageFiles(root, d.stdout.trim());
      assert.equal(plain.get('hosts')?.content ?? '', '', 'without --add-host no such line');
      assert.equal(plain.get('shm')?.content, '65536\n', 'the default stays 64 MiB');
      for (const [flag, value, msg] of [['--ulimit', 'nofiles=1', /unknown limit "nofiles"/], ['--ulimit', 'nofile=9:1', /soft limit is above the hard limit/], ['--shm-size', 'lots', /expected a size/], ['--add-host', 'nohost', /expected HOST:IP/]] as const) {
        const bad = await kiln(['build', '--root', root, flag, value, c]);
        assert.equal(bad.code, 1, `${flag} ${value}`);
        assert.match(bad.stderr, msg);
      }
    } finally {
      await cleanup(c);
    }
  });
});
