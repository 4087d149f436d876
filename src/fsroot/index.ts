export { resolveInRoot } from './resolve.js';
export { atPath, isWalkStop, lstatInRoot, mkdirAllInRoot, openDirInRoot, removeIfEmptyInRoot, setDirTimesInRoot, withDirInRoot } from './walk.js';
