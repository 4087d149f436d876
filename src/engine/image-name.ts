import { BuildError } from '../errors/index.js';
import { parseImageRef } from '../oci/index.js';

/**
 * Check an image name where a user gives it (`-t`, `kiln tag`, `kiln import`, `kiln load -t`) against the reference
 * grammar of the distribution spec (lowercase path components separated by `.`, `_`, `__` or dashes; a tag of at
 * most 128 word characters, dots and dashes; an optional `@sha256:` digest), before anything is built or stored.
 * Returns the name unchanged; throws ERR_KILN_IMAGE_REF naming the problem.
 *
 * @example
 * validateImageName('app:1.0', '-t');            // 'app:1.0'
 * validateImageName('UPPER/../x:!!', '-t');      // throws: invalid image name ... (-t)
 */
export function validateImageName(name: string, where: string): string {
  try {
    parseImageRef(name.trim());
  } catch (err) {
    const why = (err as Error).message.replace(/^invalid image name "[^]*?": /, '');
    throw new BuildError('ERR_KILN_IMAGE_REF', `invalid image name ${JSON.stringify(name)} (${where}): ${why}`, { cause: err, details: { name } });
  }
  return name;
}
