/**
 * A bounded LRU cache of onnxruntime sessions keyed by execution provider and graph key (op,
 * attributes, dtype, mask kind — never sizes, which are symbolic). Evicted sessions are released.
 */
import type { OrtSessionLike } from './ort-types.js';

/** Counters for tests and soak runs. */
export interface OnnxSessionStats {
  /** Sessions created and not yet released. */
  readonly live: number;
  /** Sessions created since the process started (or the last {@link SessionCache.resetStats}). */
  readonly created: number;
  /** Lookups answered from the cache. */
  readonly hits: number;
  /** The cache bound. */
  readonly capacity: number;
}

interface Entry {
  readonly session: Promise<OrtSessionLike>;
  /** Runs holding the session: an evicted entry is released when the last one ends. */
  inFlight: number;
  evicted: boolean;
}

/** A session checked out for one run; call `done()` when the run has settled. */
export interface SessionLease {
  readonly session: OrtSessionLike;
  done(): void;
}

/** LRU of session promises (a promise, so concurrent first calls share one creation). */
export class SessionCache {
  private readonly entries = new Map<string, Entry>();
  private live = 0;
  private created = 0;
  private hits = 0;

  constructor(private capacity: number) {}

  /**
   * Checks out the session for `key`, creating it with `create` on a miss; a failed creation is not
   * cached. The session is not released (even if evicted meanwhile) until `done()` is called.
   */
  async acquire(key: string, create: () => Promise<OrtSessionLike>): Promise<SessionLease> {
    let entry = this.entries.get(key);
    if (entry) {
      this.hits++;
      // Map iteration order is insertion order: re-inserting marks the entry most recent.
      this.entries.delete(key);
      this.entries.set(key, entry);
    } else {
      const session = create().then((s) => {
        this.live++;
        this.created++;
        return s;
      });
      entry = { session, inFlight: 0, evicted: false };
      const e = entry;
      this.entries.set(key, e);
      session.catch(() => {
        if (this.entries.get(key) === e) this.entries.delete(key);
      });
      this.evictBeyond(this.capacity);
    }
    entry.inFlight++;
    let session: OrtSessionLike;
    try {
      session = await entry.session;
    } catch (err) {
      entry.inFlight--;
      throw err;
    }
    const e = entry;
    let released = false;
    return {
      session,
      done: () => {
        if (released) return;
        released = true;
        e.inFlight--;
        if (e.evicted && e.inFlight === 0) void this.release(e);
      },
    };
  }

  /** Changes the bound (evicting the least recently used sessions beyond it). */
  setCapacity(n: number): void {
    this.capacity = Math.max(1, Math.floor(n));
    this.evictBeyond(this.capacity);
  }

  /** Releases every session (those in use when their runs end). */
  async clear(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(all.map((e) => this.evict(e)));
  }

  /** Current counters. */
  stats(): OnnxSessionStats {
    return { live: this.live, created: this.created, hits: this.hits, capacity: this.capacity };
  }

  /** Zeroes `created` and `hits` (live stays true to what exists). */
  resetStats(): void {
    this.created = 0;
    this.hits = 0;
  }

  private evictBeyond(n: number): void {
    while (this.entries.size > n) {
      const [oldest, e] = this.entries.entries().next().value as [string, Entry];
      this.entries.delete(oldest);
      void this.evict(e);
    }
  }

  private async evict(e: Entry): Promise<void> {
    e.evicted = true;
    if (e.inFlight === 0) await this.release(e);
  }

  private async release(e: Entry): Promise<void> {
    let s: OrtSessionLike;
    try {
      s = await e.session;
    } catch {
      return; // never created: nothing to release
    }
    this.live--;
    await s.release().catch(() => undefined);
  }
}
