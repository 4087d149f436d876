import type { TestContext } from 'node:test';

/**
 * The one rule for a test whose system package is missing (`why` says which, or undefined when it is there): a skip
 * with the reason on a laptop, a failure under CI (where nothing may skip). True when the test must stop here.
 */
export function stopIfMissing(t: TestContext, why: string | undefined): boolean {
  if (why === undefined) return false;
  if (process.env.CI === 'true') throw new Error(why);
  t.skip(why);
  return true;
}
