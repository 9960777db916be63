/**
 * Temporary bans, as fail2ban does: a client that breaks its limits `threshold` times within
 * `window` is refused for `duration`; each new ban lasts `factor` times the previous one, up to
 * `max_duration`, until it has behaved for `forget_after`. Memory is bounded by `maxEntries`
 * (least recently seen clients are forgotten first).
 */

/** The compiled `protection.bans` settings (milliseconds). */
export interface BanPolicy {
  readonly threshold: number;
  readonly window: number;
  readonly duration: number;
  readonly factor: number;
  readonly maxDuration: number;
  readonly forgetAfter: number;
}

interface ClientRecord {
  violations: number;
  windowStart: number;
  /** Bans so far (the next lasts duration × factor^level). */
  level: number;
  /** When the last ban ended or ends; 0 for never banned. */
  until: number;
}

/** One active ban, as the admin API shows it. */
export interface BanInfo {
  readonly client: string;
  readonly reason: string;
  readonly since: string;
  readonly until: string;
  readonly remaining_s: number;
  readonly level: number;
}

interface Ban {
  readonly until: number;
  readonly since: number;
  readonly reason: string;
  readonly level: number;
}

/**
 * A change other worker threads must make too: a ban (with its absolute end, so that it ends at
 * the same moment everywhere), a lift, a lift of all, or a broken limit (threshold counts are
 * the proxy's, not one thread's).
 */
export type BanChange =
  | { readonly op: 'ban'; readonly key: string; readonly until: number; readonly since: number; readonly reason: string; readonly level: number }
  | { readonly op: 'lift'; readonly key: string }
  | { readonly op: 'lift_all' }
  | { readonly op: 'violation'; readonly key: string; readonly at: number; readonly policy: BanPolicy };

export class BanList {
  readonly #records = new Map<string, ClientRecord>();
  readonly #bans = new Map<string, Ban>();
  readonly #now: () => number;
  maxEntries: number;
  /** Bans given since start. */
  issued = 0;
  /** Told of every change made here (not of those applied from elsewhere); null with one thread. */
  publish: ((change: BanChange) => void) | null = null;

  constructor(maxEntries: number, now: () => number = Date.now) {
    this.maxEntries = maxEntries;
    this.#now = now;
  }

  /** False when nobody is banned: the per-request check is then one comparison. */
  get any(): boolean {
    return this.#bans.size > 0;
  }

  /** Milliseconds left on `key`'s ban; 0 when it is not banned. */
  remaining(key: string): number {
    const ban = this.#bans.get(key);
    if (ban === undefined) return 0;
    const left = ban.until - this.#now();
    if (left > 0) return left;
    this.#bans.delete(key);
    return 0;
  }

  /**
   * Records one broken limit; returns the length of the ban it started (ms), or 0 when the client
   * is not banned by it.
   */
  violation(key: string, policy: BanPolicy, reason: string): number {
    const now = this.#now();
    // With the settings it was counted under: a snapshot only prepared (perhaps aborted) has none here.
    this.publish?.({ op: 'violation', key, at: now, policy });
    const length = this.#count(key, now, policy);
    if (length === 0) return 0;
    const ban: Ban = { until: now + length, since: now, reason, level: this.#records.get(key)?.level ?? 1 };
    this.#setBan(key, ban);
    this.publish?.({ op: 'ban', key, ...ban });
    return length;
  }

  /** Counts one broken limit at `now`; the length of the ban it calls for, or 0. */
  #count(key: string, now: number, policy: BanPolicy): number {
    const record = this.#recordOf(key, now, policy);
    if (this.remaining(key) > 0) return 0;
    if (now - record.windowStart > policy.window) {
      record.windowStart = now;
      record.violations = 0;
    }
    if (++record.violations < policy.threshold) return 0;
    const length = Math.min(policy.maxDuration, policy.duration * policy.factor ** record.level);
    record.level++;
    record.violations = 0;
    record.windowStart = now;
    record.until = now + length;
    return length;
  }

  /**
   * The key's record, made the most recent (the oldest are pushed out past maxEntries), its level
   * forgotten after `forget_after` of good behaviour.
   */
  #recordOf(key: string, now: number, policy: BanPolicy): ClientRecord {
    const records = this.#records;
    let record = records.get(key);
    if (record === undefined) {
      record = { violations: 0, windowStart: now, level: 0, until: 0 };
    } else {
      records.delete(key);
      if (record.until > 0 && now - record.until > policy.forgetAfter) record.level = 0;
    }
    records.set(key, record);
    if (records.size > this.maxEntries) this.#evictRecords();
    return record;
  }

  /** `issued` counts the bans given here, not those applied from another thread. */
  #setBan(key: string, ban: Ban, issued = true): void {
    this.#bans.delete(key);
    this.#bans.set(key, ban);
    if (this.#bans.size > this.maxEntries) this.#bans.delete(this.#bans.keys().next().value as string);
    if (issued) this.issued++;
  }

  /** Bans `key` by hand for `ms`; returns when the ban ends (epoch ms). */
  ban(key: string, ms: number, reason = 'admin'): number {
    const now = this.#now();
    const ban: Ban = { until: now + ms, since: now, reason, level: this.#records.get(key)?.level ?? 0 };
    this.#setBan(key, ban);
    this.publish?.({ op: 'ban', key, ...ban });
    return now + ms;
  }

  /** Lifts `key`'s ban and forgets its history; false when it was not banned. */
  lift(key: string): boolean {
    this.publish?.({ op: 'lift', key });
    return this.#lift(key);
  }

  #lift(key: string): boolean {
    this.#records.delete(key);
    const active = this.remaining(key) > 0;
    this.#bans.delete(key);
    return active;
  }

  /**
   * Makes a change published by another thread (its clock is the same wall clock). A broken
   * limit elsewhere is counted here but bans nothing by itself: the thread that saw the limit
   * broken bans, and says so.
   */
  apply(change: BanChange): void {
    switch (change.op) {
      case 'ban': {
        const record = this.#records.get(change.key);
        if (record !== undefined) {
          record.level = Math.max(record.level, change.level);
          record.until = change.until;
          record.violations = 0;
        }
        this.#setBan(change.key, { until: change.until, since: change.since, reason: change.reason, level: change.level }, false);
        return;
      }
      case 'lift':
        this.#lift(change.key);
        return;
      case 'lift_all':
        this.#liftAll();
        return;
      case 'violation':
        if (this.remaining(change.key) === 0) this.#countOnly(change.key, change.at, change.policy);
        return;
      default:
        change satisfies never;
    }
  }

  /** A violation seen elsewhere: counted towards the threshold, never a ban by itself. */
  #countOnly(key: string, at: number, policy: BanPolicy): void {
    const record = this.#recordOf(key, at, policy);
    if (at - record.windowStart > policy.window) {
      record.windowStart = at;
      record.violations = 0;
    }
    // One short of the threshold at most: the next local violation bans.
    record.violations = Math.min(record.violations + 1, policy.threshold - 1);
  }

  /** How many bans are active (expired ones are dropped on the way). */
  count(): number {
    const now = this.#now();
    for (const [client, ban] of this.#bans) if (ban.until <= now) this.#bans.delete(client);
    return this.#bans.size;
  }

  /** Tells the active bans again, to a thread that started after they were made (a replaced worker). */
  republish(): void {
    const publish = this.publish;
    if (publish === null) return;
    const now = this.#now();
    for (const [key, ban] of this.#bans) if (ban.until > now) publish({ op: 'ban', key, ...ban });
  }

  /** Lifts every ban; returns how many there were. */
  liftAll(): number {
    this.publish?.({ op: 'lift_all' });
    return this.#liftAll();
  }

  #liftAll(): number {
    const count = this.count();
    this.#bans.clear();
    this.#records.clear();
    return count;
  }

  /** The active bans, soonest to end first. */
  list(): BanInfo[] {
    const now = this.#now();
    const out: BanInfo[] = [];
    for (const [client, ban] of this.#bans) {
      if (ban.until <= now) {
        this.#bans.delete(client);
        continue;
      }
      out.push({
        client,
        reason: ban.reason,
        since: new Date(Date.now() - (now - ban.since)).toISOString(),
        until: new Date(Date.now() + (ban.until - now)).toISOString(),
        remaining_s: Math.ceil((ban.until - now) / 1000),
        level: ban.level,
      });
    }
    return out.sort((a, b) => a.remaining_s - b.remaining_s);
  }

  #evictRecords(): void {
    let excess = this.#records.size - this.maxEntries;
    for (const key of this.#records.keys()) {
      if (excess-- <= 0) break;
      this.#records.delete(key);
    }
  }
}
