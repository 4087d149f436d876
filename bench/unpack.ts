// Unpacking one layer: kiln's applyLayer against `tar -xzf` of the same blob (the floor), into fresh folders on the
// same disk. Usage: node --import tsx bench/unpack.ts LAYER.tgz [runs=3]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { applyLayer } from '../src/layer/index.js';

const [file, runsArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: bench/unpack.ts LAYER.tgz [runs]\n');
  process.exit(2);
}
const runs = Number(runsArg ?? 3);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-bench-unpack-'));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const tar: number[] = [];
const kiln: number[] = [];
try {
  for (let i = 0; i < runs; i++) {
    const a = path.join(work, `tar-${i}`);
    fs.mkdirSync(a);
    let t = process.hrtime.bigint();
    execFileSync('tar', ['-xzf', file, '-C', a, '--numeric-owner', '--xattrs', '--xattrs-include=*']);
    tar.push(Number(process.hrtime.bigint() - t) / 1e9);
    fs.rmSync(a, { recursive: true, force: true });
    const b = path.join(work, `kiln-${i}`);
    t = process.hrtime.bigint();
    await applyLayer({ source: file, dest: b, mode: 'overlay' });
    kiln.push(Number(process.hrtime.bigint() - t) / 1e9);
    fs.rmSync(b, { recursive: true, force: true });
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
const load = os.loadavg()[0]!.toFixed(1);
process.stdout.write(
  `layer ${path.basename(file)} (${(fs.statSync(file).size / 1e6).toFixed(0)} MB): tar -xzf ${median(tar).toFixed(2)} s, ` +
    `kiln applyLayer ${median(kiln).toFixed(2)} s, ratio ${(median(kiln) / median(tar)).toFixed(2)} (medians of ${runs}; load ${load})\n` +
    `  tar: ${tar.map((x) => x.toFixed(2)).join(' ')}  kiln: ${kiln.map((x) => x.toFixed(2)).join(' ')}\n`,
);
