export { convertDockerfile, findEnv } from './convert.js';
export { parseMount } from './mounts.js';
export { programStepFromText, programStepText, sameCommand } from './step-text.js';
export type { ConvertOptions, ImageResolver, NamedContext, ProgramStep, ProgramStepText } from './types.js';
