/**
 * The device thread's body (see device-thread.ts): runs batches of AES-GCM and signature jobs with its own pkcs11js
 * binding of the module the event loop already initialised. A PKCS#11 library is initialised once per
 * process, and its sessions and object handles belong to the process, so this thread uses the handles the
 * event loop sends — it never calls C_Initialize or C_Finalize, and never opens or closes a session.
 *
 * Self-contained on purpose (pkcs11js, node:worker_threads and the wire format only): tests that run the
 * TypeScript sources start the compiled copy of this file.
 */
import { parentPort, workerData } from "node:worker_threads";
import pkcs11js from "pkcs11js";
import { type ThreadJob, type JobResult, decodeJobs, encodeResults } from "./device-thread-protocol.js";

const KEY_HANDLE_INVALID = 0x60;
const OBJECT_HANDLE_INVALID = 0x82;
const TAG_BITS = 128;

const mod = new pkcs11js.PKCS11();
mod.load((workerData as { modulePath: string }).modulePath);

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function runJob(job: ThreadJob): JobResult {
  const session = asBuffer(job.session);
  const mechanism: pkcs11js.Mechanism =
    job.kind === "sign"
      ? { mechanism: job.mechanism }
      : {
          mechanism: job.mechanism,
          parameter: { type: pkcs11js.CK_PARAMS_AES_GCM, iv: asBuffer(job.iv), aad: asBuffer(job.aad), ivBits: job.iv.length * 8, tagBits: TAG_BITS } as pkcs11js.IParams,
        };
  const init = (key: Uint8Array): void => {
    if (job.kind === "encrypt") mod.C_EncryptInit(session, mechanism, asBuffer(key));
    else if (job.kind === "decrypt") mod.C_DecryptInit(session, mechanism, asBuffer(key));
    else mod.C_SignInit(session, mechanism, asBuffer(key));
  };
  try {
    let lostCopy = false;
    try {
      init(job.key);
    } catch (err) {
      // A session copy gone with its session: the same call on the token object, and the owner is told.
      const rv = (err as { code?: unknown }).code;
      if (!job.fallbackKey || (rv !== KEY_HANDLE_INVALID && rv !== OBJECT_HANDLE_INVALID)) throw err;
      lostCopy = true;
      init(job.fallbackKey);
    }
    const out = Buffer.allocUnsafe(job.outputBytes);
    const input = asBuffer(job.input);
    const output =
      job.kind === "encrypt" ? mod.C_Encrypt(session, input, out) : job.kind === "decrypt" ? mod.C_Decrypt(session, input, out) : mod.C_Sign(session, input, out);
    return { id: job.id, ok: true, lostCopy, output };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    return { id: job.id, ok: false, rv: typeof code === "number" ? code : undefined };
  }
}

parentPort!.on("message", (batch: ArrayBuffer) => {
  const results = encodeResults(decodeJobs(batch).map(runJob));
  parentPort!.postMessage(results, [results]);
});
