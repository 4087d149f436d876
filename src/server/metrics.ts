import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The service's Prometheus metrics (its own registry: nothing global). */
export interface ServerMetrics {
  registry: Registry;
  builds: Counter<'result'>;
  stepHits: Counter;
  stepMisses: Counter;
  uploadBytes: Counter;
  uploadBytesSaved: Counter;
  queueLength: Gauge;
  running: Gauge;
  buildDuration: Histogram<'result'>;
  requests: Counter<'method' | 'status'>;
}

export function createMetrics(): ServerMetrics {
  const registry = new Registry();
  const registers = [registry];
  return {
    registry,
    builds: new Counter({ name: 'kiln_builds_total', help: 'Finished builds by result', labelNames: ['result'], registers }),
    stepHits: new Counter({ name: 'kiln_step_cache_hits_total', help: 'Build steps answered from the cache', registers }),
    stepMisses: new Counter({ name: 'kiln_step_cache_misses_total', help: 'Build steps that ran', registers }),
    uploadBytes: new Counter({ name: 'kiln_upload_bytes_total', help: 'Context bytes uploaded and stored', registers }),
    uploadBytesSaved: new Counter({ name: 'kiln_upload_bytes_saved_total', help: 'Context bytes not uploaded because the team already held them', registers }),
    queueLength: new Gauge({ name: 'kiln_build_queue_length', help: 'Builds waiting for a slot', registers }),
    running: new Gauge({ name: 'kiln_builds_running', help: 'Builds running now', registers }),
    buildDuration: new Histogram({ name: 'kiln_build_duration_seconds', help: 'Build duration', labelNames: ['result'], buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900], registers }),
    requests: new Counter({ name: 'kiln_http_requests_total', help: 'HTTP requests by method and status', labelNames: ['method', 'status'], registers }),
  };
}
