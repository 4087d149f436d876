/**
 * kiln's package entry (`import { Template } from 'kiln'`): the template SDK (src/sdk) with a builder, so templates
 * build with the engine on this machine or on a kiln build service. The SDK part only describes templates; this
 * composition part wires it to the engine and the client (src/api/builder.ts).
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
import { templateConstructor, type Template as TemplateWithBase, type TemplateConstructor } from '../sdk/index.js';
import { engineBuilder } from './builder.js';

/**
 * A template with a base image: add steps, then build it (what `Template().fromImage(ref)` gives). The SDK's type
 * of that name; it is also exported as `TemplateWithBase`, the name declaration files use for inferred types.
 *
 * @example
 * const t: Template = Template().fromPythonImage('3.12-slim').pipInstall('numpy');
 */
export type Template = TemplateWithBase;

/**
 * The template builder: `Template()` or `new Template()` gives an empty template; pick a base with a `from*` method,
 * add steps, then build with `Template.build(t, options)` or `t.build(options)` (the engine on this machine, or the
 * kiln service `apiKey`/`baseUrl` or KILN_API_KEY/KILN_HOST name).
 *
 * @example
 * import { Template, waitForPort } from 'kiln';
 *
 * export default Template()
 *   .fromPythonImage('3.11-slim')
 *   .aptInstall('curl', 'git')
 *   .pipInstall('numpy', 'pandas')
 *   .setEnv('DEBUG', 'true')
 *   .copy('app/', '/app/')
 *   .setStartCmd('python3 -m http.server 8000', waitForPort(8000));
 */
export const Template: TemplateConstructor = templateConstructor(engineBuilder);

export {
  DEFAULT_BASE_IMAGES, defaultBuildLogger, isTemplate, logEntry, prepareTemplateBuild, readyLabel, renderTemplate, shellQuote, templateJSON,
  templateReads, templateStartCheck, waitForCommand, waitForFile, waitForPort, waitForProcess, waitForTimeout, waitForURL,
} from '../sdk/index.js';
export type {
  AptInstallOptions,
  AWSRegistryCredentials,
  BuildInfo,
  BuildLoggerOptions,
  BuildLogEntry,
  BuildOptions,
  BuildProgressEvent,
  BuildStatus,
  BuildStepInfo,
  BunInstallOptions,
  CopyItem,
  CopyOptions,
  EmptyTemplate,
  ForceOptions,
  GCPRegistryCredentials,
  GitCloneOptions,
  LogEntry,
  MakeDirOptions,
  NpmInstallOptions,
  PipInstallOptions,
  PrepareOptions,
  PreparedTemplateBuild,
  ReadyCheck,
  RegistryCredentials,
  RemoteOptions,
  RemoveOptions,
  RenderOptions,
  RenderedTemplate,
  RunCmdOptions,
  TemplateBase,
  TemplateConstructor,
  TemplateData,
  TemplateFinal,
  TemplateJSON,
  TemplateStep,
  Template as TemplateWithBase,
} from '../sdk/index.js';
