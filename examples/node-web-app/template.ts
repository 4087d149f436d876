/**
 * A Node.js web app: dependencies from package.json installed through the shared npm cache before the code is
 * copied, so a code change reuses the installed node_modules. The app lives in app/ (its own package.json there).
 *
 *   kiln build -t web-app:latest examples/node-web-app/template.ts
 */
import { Template, waitForURL } from 'kiln';

export default Template()
  .fromNodeImage()
  .setWorkdir('/app')
  .copy('app/package.json', './')
  .npmInstall()
  .copy('app/server.js', './')
  .setEnvs({ NODE_ENV: 'production', PORT: '3000' })
  .setStartCmd(['node', 'server.js'], waitForURL('http://localhost:3000/health'));
