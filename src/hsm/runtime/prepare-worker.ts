/**
 * The start-up worker of {@link StorePreparation} (prepared-open.ts): opens each requested token, probes
 * it and reads its objects, posts the results, then holds its sessions until the main thread says
 * "release". Kept to the few modules it needs: its load time is on the start-up path.
 */
import { parentPort } from "node:worker_threads";
import { probeOnOwnSession } from "../objects/capabilities.js";
import { readTokenObjects } from "./key-objects.js";
import type { PrepareMessage, PrepareRequest } from "./prepared-open.js";
import { rvOf } from "./return-values.js";
import { type OpenToken, openToken } from "./token.js";

const port = parentPort!;
const opened: OpenToken[] = [];

// First message: the requests (or "release" if there is nothing to do); then "release".
port.on("message", (m: "release" | { requests: PrepareRequest[] }) => {
  if (m === "release") closeAll();
  else prepareAll(m.requests);
});

function prepareAll(requests: readonly PrepareRequest[]): void {
  for (const r of requests) port.postMessage(prepareOne(r));
}

function prepareOne(r: PrepareRequest): PrepareMessage {
  let token: OpenToken;
  try {
    token = openToken({ modulePath: r.modulePath, tokenLabel: r.tokenLabel, pin: r.pin, maxSessions: 1 });
  } catch (err) {
    // Reported as the main thread's own open would report it, without trying again: a wrong PIN must cost
    // one failed login, not two (a hardware token locks the PIN after a few).
    return { keyStoreId: r.keyStoreId, error: err instanceof Error ? err.message : String(err), code: rvOf(err), fatal: true };
  }
  opened.push(token);
  let message: PrepareMessage;
  try {
    const capabilities = probeOnOwnSession(token.mod, token.slot, r.rsaOaepSha256Fallback ?? "auto");
    const objects = token.pool.trySync((s) => readTokenObjects(token.mod, s))?.value;
    if (!objects) throw new Error("no session for the scan");
    message = { keyStoreId: r.keyStoreId, capabilities, objects: objects.map((o) => ({ handle: o.handle, cls: o.cls, label: o.label })) };
  } catch (err) {
    // Not prepared: the main thread opens this store the ordinary way and reports why it fails, if it does.
    message = { keyStoreId: r.keyStoreId, error: err instanceof Error ? err.message : String(err), code: rvOf(err), fatal: false };
  }
  return message;
}

/** Closes this thread's sessions (never C_Finalize: the main thread uses the module) and lets the thread end. */
function closeAll(): void {
  for (const t of opened.splice(0)) t.pool.close();
  port.close();
}
