import type { Command } from 'commander';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BuildError } from '../../errors/index.js';
import { dockerConfigPath, normalizeAuthKey, parseChallenge, RegistryClient } from '../../registry/index.js';
import type { CliContext } from '../shared.js';

function readConfig(file: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new BuildError('ERR_KILN_ARGUMENT', `${file} is not valid JSON: ${(err as Error).message}`);
  }
}

/** Write docker's config.json as docker does: 0600, through a temp file and rename, other keys kept. */
function writeConfig(file: string, cfg: Record<string, unknown>): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(cfg, null, '\t')}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}

/** The key docker files a server under: `https://index.docker.io/v1/` for Docker Hub, else the host as given. */
function configKey(server: string): string {
  const host = normalizeAuthKey(server);
  return host === 'docker.io' ? 'https://index.docker.io/v1/' : host;
}

/** Check credentials as `docker login` does: GET /v2/, answering a Basic or Bearer (token) challenge with them. */
async function verify(host: string, username: string, password: string): Promise<void> {
  const base = new RegistryClient({ dockerConfig: false }).baseUrl(host);
  const basic = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  let res: Response;
  try {
    res = await fetch(base, { headers: { authorization: basic } });
  } catch (cause) {
    throw new BuildError('ERR_KILN_REGISTRY', `cannot reach ${base}: ${(cause as Error).message}`, { cause });
  }
  if (res.status === 401) {
    const ch = parseChallenge(res.headers.get('www-authenticate'));
    if (ch?.scheme === 'bearer' && ch.params.realm) {
      const url = new URL(ch.params.realm);
      if (ch.params.service) url.searchParams.set('service', ch.params.service);
      url.searchParams.set('account', username);
      const tok = await fetch(url, { headers: { authorization: basic } });
      if (tok.ok) return;
    }
    throw new BuildError('ERR_KILN_REGISTRY_AUTH', `login to ${host} failed: the registry refused these credentials`);
  }
  if (!res.ok) throw new BuildError('ERR_KILN_REGISTRY', `login to ${host}: ${base} answered ${res.status}`);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** `kiln login|logout`: credentials in docker's config.json (`auths`), read by every pull and push. */
export function registerLogin(program: Command, _cli: CliContext): void {
  program
    .command('login')
    .description('Log in to a registry: check the credentials, then store them in docker\'s config.json')
    .argument('[server]', 'registry host (default Docker Hub)', 'docker.io')
    .option('-u, --username <user>', 'user name')
    .option('-p, --password <password>', 'password (visible to other users: prefer --password-stdin)')
    .option('--password-stdin', 'read the password from standard input')
    .action(async (server: string, o: { username?: string; password?: string; passwordStdin?: boolean }) => {
      if (!o.username) throw new BuildError('ERR_KILN_ARGUMENT', 'kiln login needs --username (and --password-stdin or --password)');
      if (o.password !== undefined && o.passwordStdin) throw new BuildError('ERR_KILN_ARGUMENT', '--password and --password-stdin are mutually exclusive');
      const password = o.passwordStdin ? await readStdin() : o.password;
      if (!password) throw new BuildError('ERR_KILN_ARGUMENT', 'kiln login needs a password (--password-stdin or --password)');
      if (o.password !== undefined) process.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
      const host = normalizeAuthKey(server);
      await verify(host, o.username, password);
      const file = dockerConfigPath();
      const cfg = readConfig(file);
      const auths = (cfg.auths && typeof cfg.auths === 'object' ? cfg.auths : {}) as Record<string, unknown>;
      auths[configKey(server)] = { auth: Buffer.from(`${o.username}:${password}`).toString('base64') };
      writeConfig(file, { ...cfg, auths });
      process.stdout.write('Login Succeeded\n');
    });
  program
    .command('logout')
    .description('Remove a registry\'s credentials from docker\'s config.json')
    .argument('[server]', 'registry host (default Docker Hub)', 'docker.io')
    .action((server: string) => {
      const file = dockerConfigPath();
      const cfg = readConfig(file);
      const auths = (cfg.auths && typeof cfg.auths === 'object' ? cfg.auths : {}) as Record<string, unknown>;
      const host = normalizeAuthKey(server);
      const keys = Object.keys(auths).filter((k) => normalizeAuthKey(k) === host);
      if (keys.length === 0) {
        process.stdout.write(`Not logged in to ${server}\n`);
        return;
      }
      for (const k of keys) delete auths[k];
      writeConfig(file, { ...cfg, auths });
      process.stdout.write(`Removing login credentials for ${server}\n`);
    });
}
