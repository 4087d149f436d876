import { isIP } from 'node:net';
import { BuildError } from '../errors/index.js';
import type { PortForward } from '../executor/index.js';

/**
 * Parse a `-p` value as `docker run` takes it: `[IP:]HOST:CONTAINER[/tcp|/udp]`.
 *
 * @example
 * parsePublish('8080:80');           // { hostPort: 8080, containerPort: 80, protocol: 'tcp' }
 * parsePublish('127.0.0.1:53:53/udp'); // { hostIp: '127.0.0.1', hostPort: 53, containerPort: 53, protocol: 'udp' }
 */
export function parsePublish(spec: string): PortForward {
  const bad = (why: string): BuildError => new BuildError('ERR_KILN_ARGUMENT', `-p ${spec}: ${why}; expected [IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp]`);
  const slash = spec.lastIndexOf('/');
  const proto = slash >= 0 ? spec.slice(slash + 1) : 'tcp';
  if (proto !== 'tcp' && proto !== 'udp') throw bad(`"${proto}" is not a protocol`);
  const addr = slash >= 0 ? spec.slice(0, slash) : spec;
  const last = addr.lastIndexOf(':');
  if (last < 0) throw bad('a host port is needed (kiln picks none itself)');
  const containerPort = port(addr.slice(last + 1));
  const rest = addr.slice(0, last);
  const hostColon = rest.lastIndexOf(':');
  const hostPort = port(rest.slice(hostColon + 1));
  const hostIp = hostColon >= 0 ? rest.slice(0, hostColon).replace(/^\[(.*)\]$/, '$1') : undefined;
  if (containerPort === undefined) throw bad('the container port is not a port number (1-65535)');
  if (hostPort === undefined) throw bad('the host port is not a port number (1-65535)');
  if (hostIp !== undefined && isIP(hostIp) === 0) throw bad(`"${hostIp}" is not an IP address`);
  return { ...(hostIp !== undefined ? { hostIp } : {}), hostPort, containerPort, protocol: proto };
}

function port(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}
