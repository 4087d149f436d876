/**
 * Compile-time checks of the SDK's types (tsc --noEmit, run by types.test.ts against the built package). Each
 * `@ts-expect-error` line must fail to compile: if a misuse ever type-checks, tsc reports the unused directive.
 */
import { Template, waitForPort, type EmptyTemplate, type TemplateFinal, type TemplateWithBase } from 'kiln';

export async function misuse(): Promise<void> {
  const empty: EmptyTemplate = Template();
  // @ts-expect-error a template with no base image cannot be built
  await Template.build(empty);
  // @ts-expect-error an empty template has no build()
  await empty.build();
  // @ts-expect-error steps need a base image first
  empty.pipInstall('numpy');
  // @ts-expect-error new Template() without a base is empty too
  await Template.build(new Template());
  // @ts-expect-error no steps after the start command
  Template().fromPythonImage().setStartCmd('python3 app.py').pipInstall('flask');
  // @ts-expect-error package names are strings
  Template().fromPythonImage().pipInstall('numpy', 3);
  // @ts-expect-error options go last
  Template().fromNodeImage().npmInstall({ global: true }, 'typescript');
  // @ts-expect-error unknown build option
  await Template.build(Template().fromDebianImage(), { nmae: 'typo' });
}

export async function use(): Promise<void> {
  const t = Template().fromPythonImage('3.11-slim').aptInstall('curl', 'git').pipInstall('numpy', 'pandas').setEnv('DEBUG', 'true');
  const more = t.pipInstall(['matplotlib']).runCmd('git clone https://example.com/r.git /app').skipCache().pipInstall('flask');
  const final: TemplateFinal = more.setStartCmd('flask run', waitForPort(5000));
  const info = await Template.build(final, { name: 'py', skipCache: false, contextPath: '.', onLog: (l) => void l.message });
  const digest: string = info.digest;
  void digest;
  await new Template().fromNodeImage().npmInstall('typescript', { global: true }).npmInstall(['vitest'], { dev: true }).build();
  await Template('busybox:latest').runCmd('true').build({ name: 'b' });
  Template().fromTemplate(t).pipInstall({ requirements: 'requirements.txt' }).toDockerfile();
  // `Template` is a type as well as the constructor (a template with a base image), also named TemplateWithBase
  const typed: Template = Template().fromDebianImage().runCmd('true');
  const same: TemplateWithBase = typed;
  void same;
}
