/** docs/admin-api.openapi.yaml covers every endpoint the admin listener serves, and only those. */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { parse } from 'yaml';
import { ADMIN_ENDPOINTS } from '../../src/admin/admin.ts';
import { call } from '../helpers/admin.ts';
import { echo, startBackend } from '../helpers/backend.ts';
import { request } from '../helpers/http.ts';
import { startProxy } from '../helpers/proxy.ts';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

test('every admin endpoint is in the OpenAPI file, and every operation there is served', async (t) => {
  const spec = parse(await readFile(new URL('../../docs/admin-api.openapi.yaml', import.meta.url), 'utf8')) as { paths: Record<string, Record<string, unknown>> };
  const documented = new Set(Object.entries(spec.paths).flatMap(([path, item]) => METHODS.filter((m) => item[m] !== undefined).map((m) => `${m.toUpperCase()} ${path}`)));
  // The router's list, without the query strings it shows as examples.
  const served = new Set(ADMIN_ENDPOINTS.map((endpoint) => endpoint.split('?')[0] as string));
  assert.deepEqual([...served].filter((e) => !documented.has(e)), [], 'served but not in docs/admin-api.openapi.yaml');
  assert.deepEqual([...documented].filter((e) => !served.has(e)), [], 'in the OpenAPI file but not in ADMIN_ENDPOINTS');

  // And the router answers each one (not its "not found" with the endpoint list).
  const backend = await startBackend(t, echo());
  const proxy = await startProxy(t, { admin: { address: '127.0.0.1:0' }, upstreams: { app: { servers: [{ url: backend.url }] } }, routes: [{ match: {}, upstream: 'app' }] });
  const port = proxy.gatehouse.adminAddress?.port ?? 0;
  const running = (await call(port, 'GET', '/config')).body;
  const values: Record<string, string> = { name: 'app', server: '0', client: '192.0.2.1', version: running.version };
  const bodies: Record<string, string> = { '/explain': JSON.stringify({ url: '/' }) };
  for (const endpoint of documented) {
    const [method, template] = endpoint.split(' ') as [string, string];
    const path = template.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(values[name] ?? 'x'));
    const body = method === 'POST' ? (bodies[template] ?? (template.startsWith('/config/') ? running.source : undefined)) : undefined;
    if (template === '/metrics') {
      // Prometheus text, not JSON.
      assert.equal((await request(`http://127.0.0.1:${port}/metrics`)).status, 200);
      continue;
    }
    const answer = await call(port, method, path, body);
    assert.ok(!(answer.status === 404 && answer.body.endpoints !== undefined), `${endpoint} is not served (${path})`);
  }
});
