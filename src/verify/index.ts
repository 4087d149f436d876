/** The cache oracle (`kiln build --verify`): rebuild every cache hit from scratch and compare it file by file. */
export { verifyBuild, formatVerifyReport } from './verify.js';
export type { VerifyBuildOptions, VerifyDifference, VerifyReport } from './verify.js';
