/**
 * `kiln check`: a cache advisor that lints a Dockerfile (and its context and build history) for patterns that cost
 * rebuilds.
 */
export { lintDockerfile, checkBuild, contextFacts, formatFinding, secretWarnings } from './check.js';
export type { Finding, ContextFacts } from './rules.js';
