export type {
  SourceRef,
  MountDef,
  SourceOp,
  ExecOp,
  CopyOp,
  MkdirOp,
  MetaOp,
  Op,
  Vertex,
  StageResult,
  BuildGraph,
} from './types.js';
