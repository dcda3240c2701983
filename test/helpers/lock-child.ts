/**
 * A second process for test/unit/process-lock.test.ts (run with vite-node): tries the lock at argv[2] and
 * prints the outcome as one JSON line; with argv[3] === "hold", keeps it until killed.
 */
import { acquireProcessLock, isRefusal } from "../../src/daemon/process-lock.js";

const r = acquireProcessLock(process.argv[2]!);
process.stdout.write(JSON.stringify(isRefusal(r) ? { acquired: false, holderPid: r.holderPid ?? null } : { acquired: true }) + "\n");
if (process.argv[3] === "hold" && !isRefusal(r)) setInterval(() => undefined, 60_000);
