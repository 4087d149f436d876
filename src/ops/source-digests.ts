/**
 * Remembered selector digests of COPY --from sources: (stage output id, the step's source selector) → the digest of
 * the resolved entries. An output id names immutable content, so the pair's digest never changes; a missing or
 * unreadable record only means the stage is mounted and read again.
 * @internal
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { SOURCES_FORMAT } from '../context/index.js';

function fileOf(stateDir: string, selector: Record<string, unknown>): string {
  const id = createHash('sha256').update(`kiln.source-digest.v1 ${SOURCES_FORMAT}\n${JSON.stringify(selector)}`).digest('hex');
  return path.join(stateDir, 'source-digests', id.slice(0, 2), id);
}

export function loadSourceDigest(stateDir: string, selector: Record<string, unknown>): string | undefined {
  try {
    const d = fs.readFileSync(fileOf(stateDir, selector), 'utf8');
    return /^sha256:[0-9a-f]{64}$/.test(d) ? d : undefined;
  } catch {
    return undefined;
  }
}

export function saveSourceDigest(stateDir: string, selector: Record<string, unknown>, digest: string): void {
  const file = fileOf(stateDir, selector);
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, digest);
    fs.renameSync(tmp, file);
  } catch {
    // a cache of a cache: losing it costs one more read of the stage
  }
}
