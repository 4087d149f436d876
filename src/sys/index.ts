export { mount, umount, listXattrs, getXattr, xattrsOf, setXattr, MS_NOSUID, MS_NODEV, MS_NOEXEC, MNT_DETACH } from './libc.js';
