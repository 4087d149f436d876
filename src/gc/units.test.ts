import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes, parseDuration, parseSize, parseSpace, resolveSpace } from './units.js';
import { resolveGcPolicy } from './config.js';
import { parseFilters } from './filters.js';

test('sizes: decimal and binary units, bad input is an argument error', () => {
  assert.equal(parseSize('50MB'), 50_000_000);
  assert.equal(parseSize('1.5GB'), 1_500_000_000);
  assert.equal(parseSize('2GiB'), 2 * 1024 ** 3);
  assert.equal(parseSize('512k'), 512_000);
  assert.equal(parseSize('1048576'), 1048576);
  assert.throws(() => parseSize('lots'), /cannot read "lots" as a size/);
  assert.throws(() => parseSize('5XB'), /as a size/);
});

test('space: percentages of the disk', () => {
  assert.deepEqual(parseSpace('10%'), { percent: 10 });
  assert.equal(resolveSpace(parseSpace('10%'), 1000), 100);
  assert.equal(resolveSpace(parseSpace('1kB'), 1000), 1000);
  assert.throws(() => parseSpace('150%'), /more than the whole disk/);
});

test('durations: Go style plus days', () => {
  assert.equal(parseDuration('24h'), 86_400_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('7d'), 7 * 86_400_000);
  assert.equal(parseDuration('90'), 90_000);
  assert.throws(() => parseDuration('1h30'), /as a duration/);
  assert.throws(() => parseDuration('soon'), /as a duration/);
});

test('formatBytes', () => {
  assert.equal(formatBytes(0), '0B');
  assert.equal(formatBytes(1234), '1.23kB');
  assert.equal(formatBytes(50_000_000), '50.0MB');
});

test('GC defaults: min(10% of disk, 20GB) used, 10% free', () => {
  const small = resolveGcPolicy(undefined, 100_000_000_000);
  assert.equal(small.maxUsedSpace, 10_000_000_000);
  assert.equal(small.minFreeSpace, 10_000_000_000);
  assert.equal(small.enabled, true);
  const big = resolveGcPolicy(undefined, 1_000_000_000_000);
  assert.equal(big.maxUsedSpace, 20_000_000_000);
  const set = resolveGcPolicy({ maxUsedSpace: '5MB', minFreeSpace: '0', keepDuration: '1h', enabled: false }, 1e12);
  assert.deepEqual(set, { enabled: false, maxUsedSpace: 5_000_000, minFreeSpace: 0, reservedSpace: 0, keepDurationMs: 3_600_000 });
});

test('filters: types with BuildKit aliases, ids, until', () => {
  assert.deepEqual(parseFilters(['type=exec.cachemount', 'type=regular', 'id=abc', 'until=2h']), { types: ['cache-mount', 'cache'], ids: ['abc'], untilMs: 7_200_000 });
  assert.throws(() => parseFilters(['type=image']), /unknown type/);
  assert.deepEqual(parseFilters(['type=image'], { allowImage: true }), { types: ['image'] });
  assert.throws(() => parseFilters(['colour=red']), /unknown key/);
  assert.throws(() => parseFilters(['type']), /KEY=VALUE/);
});
