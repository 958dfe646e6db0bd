/**
 * A run's progress while a slice runs: connectors may report as often as they like; the record is
 * written at most every `intervalMs` (and by `flush` at the end of the slice), so
 * GET /v1/syncs/{id} shows it moving without a write per item. What a write does is the caller's:
 * the whole progress for a run of one partition, only the phase for a partitioned run (whose
 * `done`/`total` count partitions, shared by the concurrent slice loops).
 */
import type { SyncProgress } from '#platform/sync-runs.ts';

export class ProgressReporter {
  readonly #write: (progress: SyncProgress) => Promise<void>;
  readonly #now: () => Date;
  readonly #intervalMs: number;
  #latest: SyncProgress;
  #writtenAt = Number.NEGATIVE_INFINITY;
  #dirty = false;

  constructor(write: (progress: SyncProgress) => Promise<void>, initial: SyncProgress, now: () => Date, intervalMs: number) {
    this.#write = write;
    this.#latest = initial;
    this.#now = now;
    this.#intervalMs = intervalMs;
  }

  get latest(): SyncProgress {
    return this.#latest;
  }

  /** Whether a report arrived since the last write. */
  get dirty(): boolean {
    return this.#dirty;
  }

  async report(progress: SyncProgress): Promise<void> {
    const phase = String(progress.phase ?? this.#latest.phase).slice(0, 100);
    const done = Number.isFinite(progress.done) ? Math.max(0, progress.done) : this.#latest.done;
    this.#latest = { phase, done, ...(progress.total !== undefined && Number.isFinite(progress.total) ? { total: progress.total } : {}) };
    this.#dirty = true;
    if (this.#now().getTime() - this.#writtenAt >= this.#intervalMs) await this.flush();
  }

  async flush(): Promise<void> {
    if (!this.#dirty) return;
    this.#dirty = false;
    this.#writtenAt = this.#now().getTime();
    await this.#write(this.#latest);
  }
}
