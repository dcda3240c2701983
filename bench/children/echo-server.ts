/**
 * The gRPC transport ceiling: a grpc-js server whose one unary method returns its request bytes unchanged.
 * Same library, same server options and same process model as the daemon, so h2load against it measures
 * what HTTP/2 + grpc-js alone cost per call on this machine. Run as a child process by the bench; prints
 * {"echoPort": N} when listening and exits on SIGTERM.
 */
import { Server, ServerCredentials, type ServiceDefinition, type UntypedServiceImplementation } from "@grpc/grpc-js";

// bench/scenarios/echo.ts calls this path (it cannot import it: importing this file starts a server).
const ECHO_PATH = "/bench.Echo/Echo";

const identity = (b: Buffer): Buffer => b;

// Hand-written definition with identity (de)serializers: no protobuf work at all, bytes in, bytes out.
const echoService: ServiceDefinition = {
  Echo: {
    path: ECHO_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

const implementation: UntypedServiceImplementation = {
  Echo: (call: { request: Buffer }, callback: (err: null, res: Buffer) => void) => callback(null, call.request),
};

// The daemon's options (src/api/grpc/server.ts) with its default 1 MiB message limit, channelz off as there.
const server = new Server({ "grpc.max_receive_message_length": 1024 * 1024, "grpc.max_send_message_length": 1024 * 1024, "grpc.enable_channelz": 0 });
server.addService(echoService, implementation);
server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    process.stderr.write(`echo server: ${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`${JSON.stringify({ echoPort: port })}\n`);
});
process.once("SIGTERM", () => server.tryShutdown(() => process.exit(0)));
