export { pidAlive, processStartTime, ownerAlive } from './alive.js';
export type { ProcessOwner } from './alive.js';
export { restoreHeldCaCerts, trustHeldCaCerts } from './trust.js';
