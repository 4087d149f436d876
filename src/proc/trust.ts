import { readFileSync } from 'node:fs';
import tls from 'node:tls';

/*
 * The extra CA certificates (`NODE_EXTRA_CA_CERTS`) of a kiln started without them. Node 20 reads that file at every
 * start-up (~40 ms for a system bundle), before any code runs, and has no API to add CAs later. bin/kiln starts
 * `--version`, and `build` unless a flag names a registry, with the variable moved to KILN_HELD_EXTRA_CA_CERTS: a
 * build handed to the local server speaks only to a unix socket, and most local builds fetch nothing. The full CLI
 * gives it back (restoreHeldCaCerts, first thing in main), so children get the variable as it was, and from then
 * on fetch itself first waits for an undici agent that trusts Node's roots plus that file (what Node would have
 * done at start-up) to become its global dispatcher: every request of the process, whoever makes it.
 */

const HELD = 'KILN_HELD_EXTRA_CA_CERTS';
let held: string | undefined;
let installing: Promise<void> | undefined;

/** Call once, first thing, in a command that may spawn programs or fetch: puts the held variable back. */
export function restoreHeldCaCerts(env: NodeJS.ProcessEnv = process.env): void {
  const file = env[HELD];
  if (file === undefined) return;
  delete env[HELD];
  if (env.NODE_EXTRA_CA_CERTS === undefined) env.NODE_EXTRA_CA_CERTS = file;
  if (file === '' || held !== undefined) return;
  held = file;
  const untrusting = globalThis.fetch;
  globalThis.fetch = (input, init) => trustHeldCaCerts().then(() => untrusting(input, init));
}

/** Resolves once fetch trusts the held certificates (at once when nothing is held). */
export function trustHeldCaCerts(): Promise<void> {
  if (held === undefined) return Promise.resolve();
  installing ??= (async () => {
    const file = held!;
    let extra: string;
    try {
      extra = readFileSync(file, 'utf8');
    } catch (err) {
      // Node's own behaviour for an unreadable file: a warning, and the default roots.
      process.emitWarning(`Ignoring extra certs from \`${file}\`, load failed: ${(err as Error).message}`);
      return;
    }
    const { Agent, setGlobalDispatcher } = await import('undici');
    setGlobalDispatcher(new Agent({ connect: { ca: [...tls.rootCertificates, extra] } }));
  })();
  return installing;
}
