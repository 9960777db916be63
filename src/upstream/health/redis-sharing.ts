/**
 * Passive ejections shared by every instance through Redis (`state.redis.share_health`): when one
 * instance ejects a server (or lets it back), the others do the same within a message's time, so
 * that a server seen dying by one stops getting requests from all. Active check results are not
 * shared: each instance runs its own checks (its path to the server may differ). Worker threads
 * keep telling each other through their own channel (`local`); the threads of one process share
 * one name on Redis, so none applies its siblings' events twice.
 */
import type { RedisState } from '../../core/redis-state.ts';
import type { HealthSharing, ServerEvent, SharedServer } from './sharing.ts';

const CHANNEL = 'health';

export function redisHealthSharing(redis: RedisState, local: HealthSharing | null): HealthSharing {
  const servers = new Map<string, SharedServer>();
  redis.subscribe(CHANNEL, (payload) => {
    if (!isEjection(payload)) return;
    servers.get(payload.key)?.applyRemote(payload);
  });
  return {
    get runsChecks(): boolean {
      return local?.runsChecks ?? true;
    },
    publish(event: ServerEvent): void {
      local?.publish(event);
      if (event.kind !== 'check') redis.publish(CHANNEL, event);
    },
    subscribe(key: string, server: SharedServer): void {
      local?.subscribe(key, server);
      servers.set(key, server);
    },
    unsubscribe(key: string, server: SharedServer): void {
      local?.unsubscribe(key, server);
      if (servers.get(key) === server) servers.delete(key);
    },
  };
}

/** An ejection or its end, as this version sends them; anything else is ignored. */
function isEjection(value: unknown): value is Extract<ServerEvent, { kind: 'eject' | 'uneject' }> {
  if (typeof value !== 'object' || value === null) return false;
  const event = value as Record<string, unknown>;
  if (typeof event.key !== 'string' || typeof event.reason !== 'string') return false;
  if (event.kind === 'eject') return typeof event.remainingMs === 'number' && typeof event.ejections === 'number';
  return event.kind === 'uneject' && typeof event.onTrial === 'boolean';
}
