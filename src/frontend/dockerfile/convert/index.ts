export { convertDockerfile, findEnv } from './convert.js';
export { parseMount } from './mounts.js';
export type { ConvertOptions, ImageResolver, NamedContext, ProgramStep } from './types.js';
