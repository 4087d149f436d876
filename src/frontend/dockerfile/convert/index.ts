export { convertDockerfile, findEnv } from './convert.js';
export { parseMount } from './mounts.js';
export type { ConvertOptions, ImageResolver } from './types.js';
