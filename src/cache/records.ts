import type { LayerRepo } from '../metadata/index.js';
import type { LayerRecords } from './types.js';

/** The cache part's view of a state's layer records: the layers role and the state's transaction. */
export function layerRecordsOf(db: { layers: LayerRepo; transaction<T>(fn: () => T): T }): LayerRecords {
  const { layers } = db;
  return {
    getLayer: (d) => layers.getLayer(d),
    putLayer: (r) => layers.putLayer(r),
    setLayerSnapshot: (d, id) => layers.setLayerSnapshot(d, id),
    touchLayer: (d) => layers.touchLayer(d),
    getSnapshot: (id) => layers.getSnapshot(id),
    commitSnapshot: (id, d) => layers.commitSnapshot(id, d),
    putSnapshotSize: (id, bytes) => layers.putSnapshotSize(id, bytes),
    tx: (fn) => db.transaction(fn),
  };
}
