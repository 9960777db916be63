/**
 * Server health shared by worker threads: one worker runs the active checks and says what they
 * found; any worker that ejects a server (or lets it back) says so; every other worker does the
 * same to its own copy of that server's state. So a server found down or ejected by one worker is
 * skipped by all (within a message's time, well under a millisecond), and each server is checked
 * once, not once per worker. One thread alone has no sharing (null).
 */
import type { CheckResult } from './probe.ts';

/** What one worker tells the others about a server ("upstream|origin"). Times are relative: each thread has its own clock. */
export type ServerEvent =
  /** `healthy`: null while the checker's run of results is shorter than rise or fall (no verdict yet: a checker that just started knows nothing). */
  | { readonly key: string; readonly kind: 'check'; readonly result: CheckResult; readonly healthy: boolean | null }
  | { readonly key: string; readonly kind: 'eject'; readonly remainingMs: number; readonly ejections: number; readonly reason: string }
  | { readonly key: string; readonly kind: 'uneject'; readonly onTrial: boolean; readonly reason: string };

/** A server's state as the sharing sees it. */
export interface SharedServer {
  applyRemote(event: ServerEvent): void;
  /** This thread started or stopped running the active checks. */
  checksMoved(): void;
}

export interface HealthSharing {
  /** Whether this thread runs the active checks (one worker does, for all; the primary moves them when it dies). */
  readonly runsChecks: boolean;
  publish(event: ServerEvent): void;
  subscribe(key: string, server: SharedServer): void;
  unsubscribe(key: string, server: SharedServer): void;
}
