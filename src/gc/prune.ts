import { applyPlan, type ApplyResult } from './apply.js';
import { readConfigFile, resolveHistoryPolicy } from './config.js';
import { trimHistory } from './history.js';
import { collectInventory, type GcState, type Inventory } from './inventory.js';
import { planPrune, type PlanOptions, type PrunePlan } from './plan.js';

export interface PruneOutcome extends ApplyResult {
  plan: PrunePlan;
  inventory: Inventory;
}

/** Plan without removing anything (for the confirmation prompt and `--dry-run`). */
export async function previewPrune(s: GcState, opts: PlanOptions & { signal?: AbortSignal }): Promise<{ plan: PrunePlan; inventory: Inventory }> {
  const inventory = await collectInventory(s, opts.signal ? { signal: opts.signal } : {});
  return { plan: planPrune(inventory, opts), inventory };
}

/**
 * `kiln prune`: inventory, plan, remove. Safe while builds run: their leases protect what they use, and every removal
 * re-checks inside a transaction. History is trimmed to its configured count as well.
 */
export async function prune(s: GcState, opts: PlanOptions & { signal?: AbortSignal }): Promise<PruneOutcome> {
  const { plan, inventory } = await previewPrune(s, opts);
  const r = await applyPlan(s, inventory, plan.actions, opts.signal ? { signal: opts.signal } : {});
  await trimHistory({ root: s.root, db: s.db, maxBuilds: resolveHistoryPolicy(readConfigFile(s.root).history).maxBuilds });
  return { ...r, plan, inventory };
}
