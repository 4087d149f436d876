export type {
  SourceRef,
  MountDef,
  SecretSource,
  StartCheck,
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
export { recipeOf, isNumericOwner } from './recipes.js';
export type { OpRecipe, BoundRecipe } from './recipes.js';
export { definitionDigests } from './definition.js';
export { createGraphBuilder } from './builder.js';
export type { GraphBuilder, GraphBuildOptions } from './builder.js';
