/** A little steady load for tests that watch traffic move: a few request loops until stopped. */
import { Agent, request } from 'undici';

export interface Load {
  /** Requests answered so far, by status. */
  readonly statuses: Map<number, number>;
  stop(): Promise<void>;
}

/** Runs `loops` request loops against `url` (pausing `pauseMs` between requests) until stop(). */
export function startLoad(url: string, loops = 2, pauseMs = 5): Load {
  const agent = new Agent({ connections: loops });
  const statuses = new Map<number, number>();
  let running = true;
  const loop = async (): Promise<void> => {
    while (running) {
      try {
        const res = await request(url, { dispatcher: agent });
        await res.body.dump();
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      } catch {
        statuses.set(0, (statuses.get(0) ?? 0) + 1);
      }
      if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  };
  const loops_ = Array.from({ length: loops }, loop);
  return {
    statuses,
    async stop() {
      running = false;
      await Promise.all(loops_);
      await agent.close();
    },
  };
}
