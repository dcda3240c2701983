import { randomBytes } from "node:crypto";
import { Client, credentials } from "@grpc/grpc-js";
import { Child, jsonLine } from "../lib/child.js";
import type { Cleanup } from "../lib/cleanup.js";
import { rawUnary } from "../lib/grpc-raw.js";
import type { LoadTarget } from "../lib/load-scenario.js";
import { childScript } from "../lib/paths.js";

/** The method of bench/children/echo-server.ts. */
const ECHO_PATH = "/bench.Echo/Echo";

export interface EchoTargets {
  readonly echo32: LoadTarget;
  readonly echo4k: LoadTarget;
  stop(): Promise<void>;
}

/** Starts the grpc-js echo server (bench/children/echo-server.ts) and describes its 32 B and 4 KB calls. */
export async function echoTargets(cleanup: Cleanup): Promise<EchoTargets> {
  const child = Child.start(cleanup, "echo server", process.execPath, [childScript("echo-server")], process.env);
  const port = await child.waitFor((line) => jsonLine(line)?.echoPort as number | undefined, 10_000, "the echo port");
  const address = `127.0.0.1:${port}`;
  const client = new Client(address, credentials.createInsecure());

  const target = (name: string, bytes: number): LoadTarget => {
    const message = randomBytes(bytes);
    return {
      name,
      url: `http://${address}${ECHO_PATH}`,
      message,
      serverPid: child.pid,
      precheck: async () => {
        const res = await rawUnary(client, ECHO_PATH, message);
        if (!res.equals(message)) throw new Error(`${name}: the echo differs from the request`);
      },
    };
  };

  return {
    echo32: target("gRPC echo 32 B", 32),
    echo4k: target("gRPC echo 4 KB", 4096),
    stop: async () => {
      client.close();
      await child.stop();
    },
  };
}
