/**
 * kiln's template SDK: describe an image in TypeScript. Its `Template` describes (renders, gives the engine its
 * steps); the package's public entry (src/api, `import { Template } from 'kiln'`) gives it a builder.
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
export { Template, DEFAULT_BASE_IMAGES, isTemplate, templateConstructor, templateJSON } from './template.js';
export type { Builder, TemplateBackend, TemplateListing } from './builder.js';
export type { EmptyTemplate, TemplateFinal, TemplateConstructor } from './template.js';
export { waitForPort, waitForURL, waitForFile, waitForProcess, waitForTimeout, waitForCommand, readyLabel } from './ready.js';
export { defaultBuildLogger, logEntry } from './logger.js';
export type { BuildLoggerOptions } from './logger.js';
export { renderTemplate, shellQuote } from './render.js';
export { prepareTemplateBuild, templateStartCheck } from './prepare.js';
export { templateReads } from './reads.js';
export type { PrepareOptions, PreparedTemplateBuild } from './prepare.js';
export type { RenderOptions, RenderedTemplate } from './render.js';
export type {
  AptInstallOptions,
  AWSRegistryCredentials,
  BuildInfo,
  BuildLogEntry,
  BuildOptions,
  BuildProgressEvent,
  BuildStatus,
  BuildStepInfo,
  BunInstallOptions,
  CopyItem,
  CopyOptions,
  ForceOptions,
  GCPRegistryCredentials,
  GitCloneOptions,
  LogEntry,
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
