/**
 * The stale-item sweep at the end of a complete full pass: every contribution of the connection
 * that the pass did not see goes (GraphStore.deleteContributions; a node or edge another
 * connection still contributes stays, with that provenance). Two guards keep an empty or partial
 * upstream answer from reading as "everything was deleted":
 * - kinds the connector marked incomplete (`ctx.markIncomplete(kind, reason)`, kind = a node type
 *   such as "repository", an edge type such as "DEPENDS_ON", or "*" for everything) are not swept;
 * - a sweep that would remove more than `threshold` of the connection's items is held back
 *   entirely (nothing deleted, a warning on the run), unless the run was started with `forceSweep`.
 */
import { GraphStore, type ContributionRef } from '#graph/store.ts';
import type { TableRef } from '#platform/dynamo.ts';
import { SeenStore, wasSeen, type SeenSet } from './seen.ts';

export interface SweepOptions {
  threshold: number;
  force: boolean;
  now: () => Date;
}

export interface SweepResult {
  /** Contributions the connection had before the sweep. */
  total: number;
  stale: number;
  nodesDeleted: number;
  edgesDeleted: number;
  /** Why (part of) the sweep did not happen; shown on the run as warnings. */
  warnings: string[];
  heldBack: boolean;
}

/** Stale refs kept in memory between counting and deleting; past this the contributions are walked a second time. */
const REMEMBERED_STALE = 50_000;

const percent = (part: number, whole: number) => `${Math.round((part / whole) * 1000) / 10}%`;

export async function sweepStale(table: TableRef, tenantId: string, connectionId: string, syncId: string, options: SweepOptions): Promise<SweepResult> {
  const graph = new GraphStore(table);
  const seen: SeenSet = await new SeenStore(table, options.now).load(tenantId, syncId);
  const result: SweepResult = { total: 0, stale: 0, nodesDeleted: 0, edgesDeleted: 0, warnings: [], heldBack: false };

  if (seen.incomplete.has('*')) {
    result.warnings.push(`Nothing was swept: the connector reported an incomplete pass (${seen.incomplete.get('*')}).`);
    return result;
  }
  for (const [kind, reason] of seen.incomplete) result.warnings.push(`Not swept this pass: ${kind} (fetching them failed: ${reason}).`);

  const isStale = (ref: ContributionRef) => !seen.incomplete.has(ref.type) && !wasSeen(seen, ref);
  let remembered: ContributionRef[] | undefined = [];
  for await (const page of graph.contributions(tenantId, connectionId)) {
    result.total += page.length;
    for (const ref of page) {
      if (!isStale(ref)) continue;
      result.stale++;
      if (remembered && remembered.length < REMEMBERED_STALE) remembered.push(ref);
      else remembered = undefined;
    }
  }
  if (result.stale === 0) return result;

  if (result.stale / result.total > options.threshold && !options.force) {
    result.heldBack = true;
    result.warnings.push(
      `Sweep held back: this full pass did not see ${result.stale} of the connection's ${result.total} graph items (${percent(result.stale, result.total)}), ` +
        `over the ${percent(options.threshold, 1)} safety threshold, so nothing was deleted. If the upstream really lost them, run a full sync with ` +
        `"forceSweep": true (state machine input {"connectionIds": ["${tenantId}/${connectionId}"], "mode": "full", "forceSweep": true}).`,
    );
    return result;
  }

  const remove = async (refs: ContributionRef[]) => {
    if (refs.length === 0) return;
    await graph.deleteContributions(refs);
    for (const ref of refs) {
      if (ref.kind === 'node') result.nodesDeleted++;
      else result.edgesDeleted++;
    }
  };
  if (remembered) {
    for (let i = 0; i < remembered.length; i += 1000) await remove(remembered.slice(i, i + 1000));
  } else {
    for await (const page of graph.contributions(tenantId, connectionId)) await remove(page.filter(isStale));
  }
  return result;
}
