import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSpec, type CreateSpecOptions } from './create-spec.js';
import { DEFAULT_CAPABILITIES } from './defaults.js';

const ROOT_USER = { uid: 0, gid: 0, additionalGids: [0] };

function base(extra: Partial<CreateSpecOptions> = {}): CreateSpecOptions {
  return { rootfs: '/var/lib/kiln/mnt/1', args: ['/bin/sh', '-c', 'make'], env: ['A=1'], cwd: '/src', user: ROOT_USER, ...extra };
}

test('process: no tty, args/env/cwd as given, default PATH appended, NOFILE 1048576', () => {
  const s = createSpec(base());
  assert.equal(s.process.terminal, false);
  assert.deepEqual(s.process.args, ['/bin/sh', '-c', 'make']);
  assert.deepEqual(s.process.env, ['A=1', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
  assert.equal(s.process.cwd, '/src');
  assert.deepEqual(s.process.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 1048576, soft: 1048576 }]);
  assert.equal(s.process.noNewPrivileges, true);
  assert.deepEqual(s.root, { path: '/var/lib/kiln/mnt/1', readonly: false });
  assert.equal(s.ociVersion, '1.0.2');
});

test('terminal: a pty only when asked for (kiln run -t)', () => {
  assert.equal(createSpec(base({ terminal: true })).process.terminal, true);
  assert.equal(createSpec(base({ terminal: false })).process.terminal, false);
});

test('an explicit PATH is kept and nothing is added; env order is preserved', () => {
  const s = createSpec(base({ env: ['Z=1', 'PATH=/opt/bin', 'A=2'] }));
  assert.deepEqual(s.process.env, ['Z=1', 'PATH=/opt/bin', 'A=2']);
});

test('cwd is made absolute and clean', () => {
  assert.equal(createSpec(base({ cwd: 'app/./x/../y' })).process.cwd, '/app/y');
  assert.equal(createSpec(base({ cwd: '/' })).process.cwd, '/');
});

test("root gets Docker's 14 default capabilities; other users keep only the bounding set", () => {
  const root = createSpec(base()).process.capabilities;
  assert.equal(DEFAULT_CAPABILITIES.length, 14);
  for (const set of [root.bounding, root.effective, root.permitted]) assert.deepEqual(set, [...DEFAULT_CAPABILITIES]);
  assert.ok(root.bounding.includes('CAP_CHOWN') && root.bounding.includes('CAP_NET_RAW'));
  assert.ok(!root.bounding.includes('CAP_SYS_ADMIN'));
  const user = createSpec(base({ user: { uid: 1000, gid: 1000, additionalGids: [1000, 27] } }));
  assert.deepEqual(user.process.capabilities, { bounding: [...DEFAULT_CAPABILITIES], effective: [], permitted: [] });
  assert.deepEqual(user.process.user, { uid: 1000, gid: 1000, additionalGids: [1000, 27] });
});

test('host network shares the host netns; none gets its own; uts always with a hostname', () => {
  const types = (o: Partial<CreateSpecOptions>) => createSpec(base(o)).linux.namespaces.map((n) => n.type).sort();
  assert.deepEqual(types({}), ['ipc', 'mount', 'pid', 'uts']);
  assert.deepEqual(types({ network: 'host' }), ['ipc', 'mount', 'pid', 'uts']);
  assert.deepEqual(types({ network: 'none' }), ['ipc', 'mount', 'network', 'pid', 'uts']);
  assert.equal(createSpec(base()).hostname, 'kiln');
  assert.equal(createSpec(base({ hostname: 'box' })).hostname, 'box');
});

test('system mounts come first: proc, /dev tmpfs, devpts, shm, mqueue, ro sysfs, ro cgroup', () => {
  const s = createSpec(base());
  assert.deepEqual(
    s.mounts.map((m) => [m.destination, m.type]),
    [
      ['/proc', 'proc'],
      ['/dev', 'tmpfs'],
      ['/dev/pts', 'devpts'],
      ['/dev/shm', 'tmpfs'],
      ['/dev/mqueue', 'mqueue'],
      ['/sys', 'sysfs'],
      ['/sys/fs/cgroup', 'cgroup'],
    ],
  );
  const opt = (d: string) => s.mounts.find((m) => m.destination === d)!.options;
  assert.ok(opt('/sys').includes('ro'));
  assert.ok(opt('/sys/fs/cgroup').includes('ro'));
  assert.ok(opt('/dev').includes('mode=755'));
  assert.ok(opt('/dev/shm').includes('mode=1777'));
  assert.ok(opt('/dev/pts').includes('newinstance'));
  assert.deepEqual(s.linux.resources.devices, [{ allow: false, access: 'rwm' }]);
});

test('masked and read-only paths follow Docker', () => {
  const s = createSpec(base());
  for (const p of ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/sched_debug', '/sys/firmware', '/proc/acpi']) {
    assert.ok(s.linux.maskedPaths.includes(p), p);
  }
  assert.deepEqual(s.linux.readonlyPaths, ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
});

test('resolv.conf and hosts are bind-mounted from the given files, then the request mounts in order', () => {
  const s = createSpec(base({
    resolvConf: '/b/resolv.conf',
    hosts: '/b/hosts',
    mounts: [
      { type: 'bind', source: '/ctx', destination: '/src', readonly: true },
      { type: 'bind', source: '/cache', destination: 'root/.cache/' },
      { type: 'tmpfs', destination: '/tmp', options: ['size=64m'] },
    ],
  }));
  assert.deepEqual(s.mounts.slice(7), [
    { destination: '/etc/resolv.conf', type: 'bind', source: '/b/resolv.conf', options: ['rbind', 'rprivate'] },
    { destination: '/etc/hosts', type: 'bind', source: '/b/hosts', options: ['rbind', 'rprivate'] },
    { destination: '/src', type: 'bind', source: '/ctx', options: ['rbind', 'ro'] },
    { destination: '/root/.cache', type: 'bind', source: '/cache', options: ['rbind', 'rw'] },
    { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'size=64m'] },
  ]);
});

test('cgroupsPath and NOFILE are set only when given; the spec is plain JSON', () => {
  const plain = createSpec(base());
  assert.equal('cgroupsPath' in plain.linux, false);
  assert.deepEqual(JSON.parse(JSON.stringify(plain)), plain);
  const s = createSpec(base({ cgroupsPath: '/kiln/x', nofileLimit: 4096 }));
  assert.equal(s.linux.cgroupsPath, '/kiln/x');
  assert.deepEqual(s.process.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 4096, soft: 4096 }]);
});

test('the spec does not share arrays with its input', () => {
  const opts = base();
  const s = createSpec(opts);
  s.process.env.push('X=1');
  s.process.args.push('x');
  s.process.user.additionalGids.push(9);
  s.linux.maskedPaths.push('/x');
  assert.deepEqual(opts.env, ['A=1']);
  assert.deepEqual(opts.args, ['/bin/sh', '-c', 'make']);
  assert.deepEqual(ROOT_USER.additionalGids, [0]);
  assert.ok(!createSpec(base()).linux.maskedPaths.includes('/x'));
});

test('programmer errors: empty args, bind without source', () => {
  assert.throws(() => createSpec(base({ args: [] })), /args/);
  assert.throws(() => createSpec(base({ mounts: [{ type: 'bind', destination: '/x' }] })), /no source/);
});

test('confinement: no_new_privs and a seccomp deny list with namespace clones, unshare, mount, keyctl, bpf, ptrace refused', () => {
  const s = createSpec(base());
  assert.equal(s.process.noNewPrivileges, true);
  const sc = s.linux.seccomp!;
  assert.equal(sc.defaultAction, 'SCMP_ACT_ALLOW');
  const denied = new Set(sc.syscalls.filter((r) => !r.args && r.errnoRet === 1).flatMap((r) => r.names));
  for (const n of ['unshare', 'setns', 'mount', 'umount2', 'keyctl', 'add_key', 'request_key', 'bpf', 'ptrace', 'init_module', 'finit_module', 'delete_module', 'clock_settime', 'settimeofday', 'adjtimex', 'reboot', 'swapon', 'swapoff', 'kexec_load', 'open_by_handle_at', 'perf_event_open', 'userfaultfd']) {
    assert.ok(denied.has(n), n);
  }
  assert.deepEqual(sc.syscalls.find((r) => r.names.includes('clone3')), { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
  const cloneMasks = sc.syscalls.filter((r) => r.names[0] === 'clone').map((r) => r.args![0]!.value);
  assert.ok(cloneMasks.includes(0x10000000) && cloneMasks.includes(0x00020000) && cloneMasks.includes(0x40000000));
  for (const n of ['read', 'write', 'clone', 'execve', 'socket', 'chroot']) assert.ok(!denied.has(n), `${n} must stay allowed`);
});

test('resources: pids and cpu shares reach the spec beside the device rule', () => {
  const s = createSpec(base({ resources: { pids: { limit: 40 }, cpu: { shares: 512 } } }));
  assert.deepEqual(s.linux.resources, { devices: [{ allow: false, access: 'rwm' }], pids: { limit: 40 }, cpu: { shares: 512 } });
});

test('isolated network: joins the given namespace and drops CAP_NET_RAW; insecure: no seccomp, no masks', () => {
  const s = createSpec(base({ network: 'isolated', netnsPath: '/var/lib/kiln/exec/netns/x' }));
  assert.deepEqual(s.linux.namespaces.find((n) => n.type === 'network'), { type: 'network', path: '/var/lib/kiln/exec/netns/x' });
  assert.ok(!s.process.capabilities.bounding.includes('CAP_NET_RAW'));
  assert.throws(() => createSpec(base({ network: 'isolated' })), /needs netnsPath/);
  const i = createSpec(base({ insecure: true, insecureCapabilities: ['CAP_SYS_ADMIN'] }));
  assert.equal(i.linux.seccomp, undefined);
  assert.deepEqual(i.linux.maskedPaths, []);
  assert.deepEqual(i.process.capabilities.bounding, ['CAP_SYS_ADMIN']);
  assert.equal(i.process.noNewPrivileges, false);
});
