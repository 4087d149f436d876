/**
 * kiln's seccomp profile for RUN: everything is allowed except the calls below, which fail with EPERM (clone3 with
 * ENOSYS, so that libc falls back to clone, whose flags a filter can inspect). The list has the effect of Docker's
 * default profile for a container with Docker's default capabilities: each entry is a call Docker's profile refuses
 * there, with why. README.md "Confinement" repeats the table.
 * @internal
 */
import type { OciSeccomp, OciSyscallRule } from './types.js';

const EPERM = 1;
const ENOSYS = 38;

/** Denied calls, grouped by why. */
export const SECCOMP_DENIED: ReadonlyArray<{ names: readonly string[]; why: string }> = [
  { names: ['unshare', 'setns'], why: 'new or foreign namespaces (user namespaces would give a RUN a root with every capability)' },
  { names: ['mount', 'umount', 'umount2', 'pivot_root', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount', 'open_tree', 'mount_setattr'], why: 'mounting, unmounting and moving mounts (could uncover masked paths)' },
  { names: ['keyctl', 'add_key', 'request_key'], why: 'the kernel keyring is not namespaced' },
  { names: ['bpf'], why: 'loading BPF programs reads and changes kernel state' },
  { names: ['ptrace', 'process_vm_readv', 'process_vm_writev', 'kcmp'], why: 'inspecting other processes\' memory (and ptrace sandbox escapes on older kernels)' },
  { names: ['init_module', 'finit_module', 'delete_module', 'create_module', 'query_module', 'get_kernel_syms'], why: 'kernel modules' },
  { names: ['clock_settime', 'clock_adjtime', 'settimeofday', 'stime', 'adjtimex'], why: 'the clock is not namespaced' },
  { names: ['reboot', 'kexec_load', 'kexec_file_load'], why: 'rebooting or replacing the kernel' },
  { names: ['swapon', 'swapoff'], why: 'the host\'s swap' },
  { names: ['open_by_handle_at', 'name_to_handle_at'], why: 'opening files by handle bypasses the mount namespace (the "shocker" escape)' },
  { names: ['perf_event_open'], why: 'kernel and other processes\' performance data' },
  { names: ['userfaultfd'], why: 'a common aid to kernel exploits' },
  { names: ['acct', 'quotactl', 'nfsservctl', 'lookup_dcookie', 'sysfs', '_sysctl', 'uselib', 'ustat', 'vm86', 'vm86old', 'syslog'], why: 'host-wide accounting, quotas, obsolete calls and the kernel log' },
  { names: ['iopl', 'ioperm'], why: 'raw I/O port access' },
  { names: ['mbind', 'set_mempolicy', 'get_mempolicy', 'move_pages', 'migrate_pages'], why: 'NUMA placement of memory (host-wide effect)' },
];

/** clone flags that create namespaces: clone with any of them is refused (one rule per flag: a filter tests equality). */
export const CLONE_NAMESPACE_FLAGS: ReadonlyArray<[string, number]> = [
  ['CLONE_NEWNS', 0x00020000],
  ['CLONE_NEWCGROUP', 0x02000000],
  ['CLONE_NEWUTS', 0x04000000],
  ['CLONE_NEWIPC', 0x08000000],
  ['CLONE_NEWUSER', 0x10000000],
  ['CLONE_NEWPID', 0x20000000],
  ['CLONE_NEWNET', 0x40000000],
];

/** The profile for the current machine's architecture. */
export function seccompProfile(arch: string = process.arch): OciSeccomp {
  const syscalls: OciSyscallRule[] = [
    { names: SECCOMP_DENIED.flatMap((g) => g.names), action: 'SCMP_ACT_ERRNO', errnoRet: EPERM },
    // clone3 passes its flags in memory, out of a filter's reach: report it missing so libc uses clone
    { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
    ...CLONE_NAMESPACE_FLAGS.map(([, flag]): OciSyscallRule => ({
      names: ['clone'],
      action: 'SCMP_ACT_ERRNO',
      errnoRet: EPERM,
      // s390 swaps clone's first two arguments
      args: [{ index: arch === 's390x' ? 1 : 0, value: flag, valueTwo: flag, op: 'SCMP_CMP_MASKED_EQ' }],
    })),
  ];
  return { defaultAction: 'SCMP_ACT_ALLOW', architectures: architectures(arch), syscalls };
}

function architectures(arch: string): string[] {
  switch (arch) {
    case 'x64':
      return ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'];
    case 'arm64':
      return ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'];
    case 'arm':
      return ['SCMP_ARCH_ARM'];
    case 'ppc64':
      return ['SCMP_ARCH_PPC64LE'];
    case 's390x':
      return ['SCMP_ARCH_S390X', 'SCMP_ARCH_S390'];
    default:
      return [];
  }
}
