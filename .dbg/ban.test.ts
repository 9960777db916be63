import { test } from 'node:test';
import { startProxy } from '../test/helpers/proxy.ts';
import { startRedis } from '../test/helpers/redis.ts';
import { admin } from '../test/helpers/clients.ts';
test('x', async (t) => {
  const redis = await startRedis(t);
  const mk = () => startProxy(t, { admin: { address: '127.0.0.1:0' }, routes: [{ match: {}, respond: { status: 200, body: 'x' } }], state: { redis: { url: redis.url } } });
  const a = await mk(); const b = await mk();
  console.log(await admin(a.gatehouse.adminAddress!.port, 'POST', '/bans/127.0.0.5?duration=10m'));
  await new Promise((r) => setTimeout(r, 300));
  console.log(b.gatehouse.protection().state.bans.remaining('127.0.0.5'), (a.gatehouse.status() as any).redis, (b.gatehouse.status() as any).redis);
});
