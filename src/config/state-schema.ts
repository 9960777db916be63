/**
 * `state:` where the state several Gatehouse instances share lives (docs/scaling.md). Absent, every
 * store is the embedded one (in memory, or shared memory between worker threads). With `redis`,
 * rate limits, bans, the cache's second tier and passive ejections are shared through Redis or
 * Valkey: standalone (`url`), Sentinel (`sentinels` + `name`) or Cluster (`cluster`).
 */
import { z } from 'zod';
import { duration, parseHostPort } from './units.ts';

/** "host:port" of a Sentinel or Cluster node. */
const node = z.string().refine((value) => parseHostPort(value) !== undefined && !value.startsWith(':'), {
  message: 'must be "host:port"',
});

const redisSchema = z
  .strictObject({
    /** A standalone server: redis://[user:password@]host:port[/db] or rediss:// for TLS. */
    url: z
      .string()
      .refine((v) => /^rediss?:\/\//.test(v) && URL.canParse(v), { message: 'must be a redis:// or rediss:// URL' })
      .optional(),
    /** Sentinels ("host:port") that name the current primary of `name`. */
    sentinels: z.array(node).min(1).optional(),
    /** The Sentinel master name (with `sentinels`). */
    name: z.string().min(1).optional(),
    /** Cluster nodes ("host:port") to discover the cluster from. */
    cluster: z.array(node).min(1).optional(),
    /** Username and password of the Redis servers (Sentinel and Cluster; a URL carries its own). */
    username: z.string().optional(),
    password: z.string().optional(),
    /** The Sentinels' own password, when they have one. */
    sentinel_password: z.string().optional(),
    /** TLS to the servers (Sentinel and Cluster; a URL says so with rediss://). */
    tls: z.boolean().default(false),
    /** Every key and channel starts with this, so that several deployments can share one Redis. */
    key_prefix: z.string().default('gatehouse:'),
    /** The longest any Redis call may take; past it the call counts as failed and the local fallback answers. */
    timeout: duration.default(50),
    /** How long a connection attempt may take. */
    connect_timeout: duration.default(2000),
    /** What rate limits do while Redis is unreachable: open (local per-instance limits) or closed (refuse). */
    on_failure: z.enum(['open', 'closed'], { error: 'must be open or closed' }).default('open'),
    /** Rate limits' local fast path (docs/scaling.md#rate-limits). */
    rate_limits: z
      .strictObject({
        /** The most tokens an instance reserves from Redis at once for one key. */
        batch: z.number().int().min(1).max(10_000).default(100),
        /** The share of a key's free tokens one reservation may take (0 < share ≤ 1): smaller is more accurate. */
        share: z.number().gt(0).max(1).default(0.1),
        /** Reserved tokens not used within this time go back to Redis. */
        hold: duration.default(1000),
      })
      .prefault({}),
    /** Share passive ejections and uneject events of servers between instances. */
    share_health: z.boolean().default(true),
  })
  .superRefine((value, ctx) => {
    const given = [value.url, value.sentinels, value.cluster].filter((v) => v !== undefined).length;
    if (given !== 1) ctx.addIssue({ code: 'custom', message: 'give exactly one of url, sentinels or cluster' });
    if (value.sentinels !== undefined && value.name === undefined) ctx.addIssue({ code: 'custom', path: ['name'], message: 'Sentinel needs the master name' });
    if (value.timeout < 1) ctx.addIssue({ code: 'custom', path: ['timeout'], message: 'must be at least 1ms' });
  });

/** The `state` block (empty by default: every store local). */
export const stateSchema = z
  .strictObject({
    /** Shared state in Redis or Valkey; absent: in-memory (one instance needs nothing else). */
    redis: redisSchema.optional(),
  })
  .default({});

/** The validated `state` block. */
export type StateConfig = z.output<typeof stateSchema>;
/** The validated `state.redis` block. */
export type RedisConfig = NonNullable<StateConfig['redis']>;
