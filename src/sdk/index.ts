/**
 * kiln's template SDK: describe an image in TypeScript, build it with a cache on every step.
 *
 * @example
 * import { Template, waitForPort } from 'kiln';
 *
 * const t = Template()
 *   .fromPythonImage('3.11-slim')
 *   .pipInstall('numpy', 'pandas')
 *   .setStartCmd('python3 -m http.server 8000', waitForPort(8000));
 * const info = await Template.build(t, { name: 'numpy-box' });
 */
export { Template, DEFAULT_BASE_IMAGES, isTemplate, templateJSON } from './template.js';
export type { EmptyTemplate, TemplateFinal, TemplateConstructor } from './template.js';
export { waitForPort, waitForURL, waitForFile, waitForProcess, waitForTimeout } from './ready.js';
export { renderTemplate, shellQuote } from './render.js';
export { prepareTemplateBuild } from './prepare.js';
export { templateReads } from './reads.js';
export type { PrepareOptions, PreparedTemplateBuild } from './prepare.js';
export type { RenderOptions, RenderedTemplate } from './render.js';
export type { BuildStatus } from './remote.js';
export type {
  AptInstallOptions,
  BuildInfo,
  BuildLogEntry,
  BuildOptions,
  BuildProgressEvent,
  BuildStepInfo,
  CopyOptions,
  ForceOptions,
  GitCloneOptions,
  MakeDirOptions,
  NpmInstallOptions,
  PipInstallOptions,
  ReadyCheck,
  RegistryCredentials,
  RemoteOptions,
  RemoveOptions,
  RunCmdOptions,
  TemplateBase,
  TemplateData,
  TemplateJSON,
  TemplateStep,
} from './types.js';
