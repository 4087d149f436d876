import type { Builder } from '../sdk/index.js';

/**
 * The SDK's builder in this package: a kiln build service when a call names one (`apiKey`/`baseUrl`, or KILN_API_KEY /
 * KILN_HOST), else the engine on this machine. Each is loaded on first use, so importing the package stays light.
 */
export const engineBuilder: Builder = {
  async backend(o) {
    if (o.apiKey || o.baseUrl || process.env.KILN_API_KEY || process.env.KILN_HOST) {
      const { remoteBackend } = await import('./remote.js');
      return remoteBackend(o);
    }
    const { localBackend } = await import('./local.js');
    return localBackend(o.root);
  },
};
