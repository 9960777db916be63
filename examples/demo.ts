/**
 * `npm start`: two small demo backends on 127.0.0.1:3000 and :3001, and Gatehouse in front of them
 * with examples/quickstart.yaml, so that a newcomer sees it proxy and balance at once.
 */
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { runCli } from '../src/cli.ts';

for (const port of [3000, 3001]) {
  createServer((req, res) => {
    const body = `Hello from demo backend :${port}\n${req.method} ${req.url}\nX-Forwarded-For: ${String(req.headers['x-forwarded-for'])}\n`;
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', server: 'demo-backend/1.0' });
    res.end(body);
  })
    .listen(port, '127.0.0.1')
    .unref();
}

process.stderr.write(
  'Demo backends on 127.0.0.1:3000 and :3001. Try:\n' +
    '  curl http://127.0.0.1:8080/          (balanced 1:2 over the two backends)\n' +
    '  curl http://127.0.0.1:8080/api/hello (prefix stripped: the backend sees /hello)\n' +
    '  curl -i http://127.0.0.1:8080/old    (301 redirect)\n' +
    '  curl http://127.0.0.1:9090/status    (admin API)\n\n',
);
await runCli(['run', '--config', fileURLToPath(new URL('quickstart.yaml', import.meta.url))]);
