import { BuildError } from '../errors/index.js';
import type { Vertex } from './types.js';

/** Build-wide options a front end's graph is built with: they shape each vertex as it is added, never afterwards. */
export interface GraphBuildOptions {
  /**
   * Network of RUN steps that name none (`default`). It is part of each RUN's definition and cache key. With
   * `isolated`, a RUN asking for the host's network is refused unless `allowHostNetwork`.
   */
  network?: 'host' | 'none' | 'isolated';
  allowHostNetwork?: boolean;
}

/** A graph being built: vertices in the order added (a dependency order), ids given by the builder. */
export interface GraphBuilder {
  readonly vertices: Map<string, Vertex>;
  readonly order: string[];
  /** Add a vertex (the build-wide options applied) and return its id. */
  add(v: Omit<Vertex, 'id'>): string;
}

/**
 * The one way front ends (the Dockerfile conversion, the SDK's steps through it) create vertices.
 *
 * @example
 * const g = createGraphBuilder({ network: 'none' });
 * const base = g.add({ name: 'FROM scratch', stage: '0', op: { type: 'source', ref: 'scratch' }, deps: [] });
 */
export function createGraphBuilder(opts: GraphBuildOptions = {}): GraphBuilder {
  const vertices = new Map<string, Vertex>();
  const order: string[] = [];
  let counter = 0;
  return {
    vertices,
    order,
    add(v) {
      const id = `v${++counter}`;
      vertices.set(id, { ...v, id, op: withNetwork(v, opts) });
      order.push(id);
      return id;
    },
  };
}

function withNetwork(v: Omit<Vertex, 'id'>, opts: GraphBuildOptions): Vertex['op'] {
  const op = v.op;
  if (op.type !== 'exec') return op;
  if (opts.network === 'isolated' && !opts.allowHostNetwork && op.network === 'host') {
    const where = v.location ? `${v.location.file}:${v.location.line}: ` : '';
    throw new BuildError('ERR_KILN_NOT_SUPPORTED', `${where}RUN --network=host is not allowed: this build runs with the isolated network`, {
      hint: 'drop --network=host, or allow it in the server\'s config (allowHostNetwork)',
    });
  }
  return opts.network && op.network === 'default' ? { ...op, network: opts.network } : op;
}
