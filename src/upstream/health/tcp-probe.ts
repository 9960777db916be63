/** health_check type tcp: the server passes when a TCP connection to it opens. */
import { connect } from 'node:net';
import { errorCodeOrMessage } from '../../core/caught.ts';
import type { HealthProbe, ProbeOutcome, ProbeTarget } from './probe.ts';

export class TcpProbe implements HealthProbe {
  check(server: ProbeTarget, signal: AbortSignal): Promise<ProbeOutcome> {
    return new Promise((resolve) => {
      const socket = connect({ host: server.hostname, port: server.port, signal });
      socket.once('connect', () => {
        socket.destroy();
        resolve({ ok: true, detail: 'connected' });
      });
      socket.once('error', (error: Error) => {
        socket.destroy();
        resolve({ ok: false, detail: signal.aborted ? 'timeout' : errorCodeOrMessage(error) });
      });
    });
  }
}
