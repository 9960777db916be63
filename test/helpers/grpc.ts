/**
 * A gRPC service for tests without .proto files: JSON messages, four methods (unary, server
 * streaming, bidi streaming, and a slow unary for deadlines), served by @grpc/grpc-js.
 */
import * as grpc from '@grpc/grpc-js';
import type { TestContext } from 'node:test';

/** A message: any JSON object. */
export type Message = Record<string, unknown>;

const json = {
  serialize: (value: Message): Buffer => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer): Message => JSON.parse(bytes.toString()) as Message,
};

function method(name: string, requestStream: boolean, responseStream: boolean) {
  return {
    path: `/gatehouse.test.Echo/${name}`,
    requestStream,
    responseStream,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  };
}

/** The service definition shared by the server and the client. */
export const ECHO_SERVICE = {
  unary: method('Unary', false, false),
  serverStream: method('ServerStream', false, true),
  bidi: method('Bidi', true, true),
  slow: method('Slow', false, false),
} satisfies grpc.ServiceDefinition;

/**
 * grpc.health.v1.Health, with the messages as raw bytes: the request's service name is read by
 * hand, the answer is HealthCheckResponse { status = 1 } written by hand.
 */
const HEALTH_SERVICE = {
  check: {
    path: '/grpc.health.v1.Health/Check',
    requestStream: false,
    responseStream: false,
    requestSerialize: (value: Buffer): Buffer => value,
    requestDeserialize: (bytes: Buffer): Buffer => bytes,
    responseSerialize: (status: number): Buffer => (status === 0 ? Buffer.alloc(0) : Buffer.from([0x08, status])),
    responseDeserialize: (bytes: Buffer): number => bytes[1] ?? 0,
  },
} satisfies grpc.ServiceDefinition;

/** ServingStatus values of grpc.health.v1. */
export const SERVING = 1;
export const NOT_SERVING = 2;

/** What the test server saw. */
export interface EchoServerLog {
  /** Metadata keys of each call, by method. */
  readonly metadata: Record<string, string>[];
  /** Slow calls that were cancelled (their deadline passed, or the client went away). */
  cancelled: number;
  /** Health by service name ("" for the server); an unknown service answers NOT_FOUND. Change it to change the answers. */
  readonly health: Map<string, number>;
  /** Health checks received. */
  healthChecks: number;
}

/**
 * Starts the echo service on 127.0.0.1:0, plain (h2c) or with TLS credentials; stopped when the
 * test ends. Unary answers { echo, from }; a request with `fail` set ends with that status code
 * and message; serverStream sends `count` messages; bidi answers each message as it comes.
 */
export async function startEchoServer(t: TestContext, credentials = grpc.ServerCredentials.createInsecure()): Promise<{ port: number; log: EchoServerLog }> {
  const server = new grpc.Server();
  const log: EchoServerLog = { metadata: [], cancelled: 0, health: new Map([['', SERVING]]), healthChecks: 0 };
  server.addService(HEALTH_SERVICE, {
    check(call: grpc.ServerUnaryCall<Buffer, number>, callback: grpc.sendUnaryData<number>) {
      log.healthChecks++;
      // HealthCheckRequest { string service = 1 }: tag 0x0a, a one-byte length (short names).
      const request = call.request;
      const service = request.length > 2 && request[0] === 0x0a ? request.subarray(2, 2 + (request[1] ?? 0)).toString() : '';
      const status = log.health.get(service);
      if (status === undefined) callback({ code: grpc.status.NOT_FOUND, details: `unknown service ${service}` });
      else callback(null, status);
    },
  });
  const remember = (metadata: grpc.Metadata): void => {
    log.metadata.push(Object.fromEntries(Object.entries(metadata.getMap()).map(([k, v]) => [k, String(v)])));
  };
  server.addService(ECHO_SERVICE, {
    unary(call: grpc.ServerUnaryCall<Message, Message>, callback: grpc.sendUnaryData<Message>) {
      remember(call.metadata);
      const fail = call.request['fail'];
      if (typeof fail === 'number') {
        callback({ code: fail, details: String(call.request['details'] ?? 'failed on purpose') });
        return;
      }
      const trailer = new grpc.Metadata();
      trailer.set('x-trailer', 'from-server');
      callback(null, { echo: call.request['text'], from: 'server' }, trailer);
    },
    serverStream(call: grpc.ServerWritableStream<Message, Message>) {
      remember(call.metadata);
      const count = Number(call.request['count'] ?? 3);
      for (let i = 0; i < count; i++) call.write({ n: i });
      call.end();
    },
    bidi(call: grpc.ServerDuplexStream<Message, Message>) {
      remember(call.metadata);
      call.on('data', (message: Message) => call.write({ echo: message['text'] }));
      call.on('end', () => call.end());
    },
    slow(call: grpc.ServerUnaryCall<Message, Message>, callback: grpc.sendUnaryData<Message>) {
      remember(call.metadata);
      const timer = setTimeout(() => callback(null, { late: true }), Number(call.request['ms'] ?? 2000));
      call.on('cancelled', () => {
        clearTimeout(timer);
        log.cancelled++;
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', credentials, (error, bound) => (error === null ? resolve(bound) : reject(error)));
  });
  t.after(() => new Promise<void>((resolve) => server.tryShutdown(() => resolve())));
  return { port, log };
}

/** The generic client class of the echo service. */
export const EchoClient = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo');

/** A client of `target` (host:port), closed when the test ends. */
export function echoClient(t: TestContext, target: string, credentials = grpc.credentials.createInsecure(), options: grpc.ChannelOptions = {}): grpc.Client & Record<string, Function> {
  const client = new EchoClient(target, credentials, options) as grpc.Client & Record<string, Function>;
  t.after(() => client.close());
  return client;
}

/** A unary call (with `metadata`) as a promise, settled once its status (with the trailers) has arrived; rejects with the ServiceError. */
export function unary(
  client: grpc.Client & Record<string, Function>,
  name: 'unary' | 'slow',
  request: Message,
  options: grpc.CallOptions = {},
  metadata = new grpc.Metadata(),
): Promise<{ response: Message; trailers: grpc.Metadata }> {
  return new Promise((resolve, reject) => {
    let outcome: { error: grpc.ServiceError | null; response: Message } | undefined;
    let trailers: grpc.Metadata | undefined;
    const settle = (): void => {
      if (outcome === undefined || trailers === undefined) return;
      if (outcome.error !== null) reject(outcome.error);
      else resolve({ response: outcome.response, trailers });
    };
    const call = (client[name] as Function).call(client, request, metadata, options, (error: grpc.ServiceError | null, response: Message) => {
      outcome = { error, response };
      settle();
    }) as grpc.ClientUnaryCall;
    call.on('status', (status: grpc.StatusObject) => {
      trailers = status.metadata;
      settle();
    });
  });
}
