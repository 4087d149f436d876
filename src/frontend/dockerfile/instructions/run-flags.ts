/**
 * The checks BuildKit makes on RUN's `--mount`, `--network`, `--security` and `--device` values at parse
 * time, before any variable is expanded. Full mount parsing happens later, after expansion.
 * @internal
 */
import { InstructionProblem } from './problem.js';
import { quoteGo } from '../parser/index.js';
import { withSuggestion } from './suggest.js';

const NETWORK_MODES = ['default', 'none', 'host'];
const SECURITY_MODES = ['insecure', 'sandbox'];

/**
 * Split one CSV record (as Go's encoding/csv reads a single line): `,` separates fields, a field that
 * starts with `"` is quoted and `""` inside it is one quote.
 */
export function splitCsvRecord(text: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    if (text[i] === '"') {
      let field = '';
      i++;
      for (;;) {
        const q = text.indexOf('"', i);
        if (q < 0) throw new InstructionProblem(`extraneous or missing " in quoted-field`);
        field += text.slice(i, q);
        i = q + 1;
        if (text[i] === '"') {
          field += '"';
          i++;
          continue;
        }
        if (i === text.length || text[i] === ',') break;
        throw new InstructionProblem(`extraneous or missing " in quoted-field`);
      }
      fields.push(field);
    } else {
      const comma = text.indexOf(',', i);
      const field = comma < 0 ? text.slice(i) : text.slice(i, comma);
      if (field.includes('"')) throw new InstructionProblem(`bare " in non-quoted-field`);
      fields.push(field);
      i = comma < 0 ? text.length : comma;
    }
    if (i >= text.length) return fields;
    i++; // skip the comma
  }
}

function csvFields(value: string, what: string): string[] {
  try {
    return splitCsvRecord(value);
  } catch (err) {
    if (err instanceof InstructionProblem) throw new InstructionProblem(`failed to parse csv ${what}: ${err.message}`);
    throw err;
  }
}

/** Parse-time mount check: only `from=` is looked at, since it may not use variables. */
export function checkMount(value: string): void {
  for (const field of csvFields(value, 'mounts')) {
    const eq = field.indexOf('=');
    if (eq < 0) continue;
    if (field.slice(0, eq).toLowerCase() !== 'from') continue;
    const v = field.slice(eq + 1);
    const dollar = v.indexOf('$');
    if (dollar !== -1 && dollar !== v.length - 1) {
      throw new InstructionProblem("'from' doesn't support variable expansion, define alias stage instead");
    }
  }
}

function parseBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return undefined;
}

/** A `--device` value as BuildKit reads it. */
export interface DeviceRequest {
  name: string;
  required: boolean;
}

/** Parse a `--device` value (`name[,required[=bool]]`), with BuildKit's messages. */
export function parseDevice(value: string): DeviceRequest {
  const d: DeviceRequest = { name: '', required: false };
  for (const field of csvFields(value, 'devices')) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    const v = eq < 0 ? '' : field.slice(eq + 1);
    if (eq < 0) {
      if (key === 'required') d.required = true;
      else if (d.name === '') d.name = field;
      else throw new InstructionProblem(`invalid field '${field}' must be a key=value pair`);
      continue;
    }
    if (key === 'name') {
      if (d.name !== '') throw new InstructionProblem(`device name already set to ${d.name}`);
      d.name = v;
    } else if (key === 'required') {
      const b = parseBool(v);
      if (b === undefined) throw new InstructionProblem(`invalid value for ${key}: ${v}`);
      d.required = b;
    } else if (d.name === '') {
      d.name = field;
    } else {
      throw new InstructionProblem(withSuggestion(`unexpected key '${key}' in '${field}'`, {
        value: key, options: ['name', 'required'], caseSensitive: true,
      }));
    }
  }
  return d;
}

/** Check `--network`. */
export function checkNetwork(value: string): void {
  if (!NETWORK_MODES.includes(value)) throw new InstructionProblem(`invalid network mode ${quoteGo(value)}`);
}

/** Check `--security`. */
export function checkSecurity(value: string): void {
  if (!SECURITY_MODES.includes(value)) throw new InstructionProblem(`security ${quoteGo(value)} is not valid`);
}
