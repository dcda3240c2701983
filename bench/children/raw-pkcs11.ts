/**
 * The device ceilings: AES-256-GCM encryption of 4 KB, and ECDSA / RSA-PSS signatures of a digest, on
 * SoftHSM2 token keys, in a tight loop in one process — no gRPC, no service layer. Run by the bench as a
 * child process so that its PKCS#11 initialisation and SOFTHSM2_CONF (its own token) are isolated from the
 * daemon and from each other.
 *
 * Modes (one per process):
 *   gcm          C_EncryptInit + C_Encrypt with pkcs11js directly: the raw AES-GCM ceiling.
 *   rng+gcm      C_GenerateRandom(12) for the IV, then as gcm: the device work of one KMS Encrypt.
 *   keystore     Pkcs11KeyStore.generateRandom + encryptAesGcm, awaited one after the other: the same
 *                work through the daemon's key-store class, so its own overhead shows.
 *   gcm-session  as gcm, on an in-memory session copy of the key (C_CopyObject, CKA_TOKEN=false):
 *                SoftHSM2 re-reads a token object's file on every C_EncryptInit, a session object not.
 *   ecdsa-sign, pss-sign
 *                C_SignInit + C_Sign of a 32-byte digest (ECDSA P-256, RSA-2048 PSS SHA-256) on a token
 *                pair made with the daemon's templates, in a synchronous loop (sign-ops.ts).
 *   ecdsa-sign-session
 *                as ecdsa-sign, on an in-memory session copy of the private key: how the daemon signs P-256.
 *   ecdsa-sign-async, pss-sign-async
 *                the same with C_SignAsync on `sessions` sessions at once, awaited in as many concurrent
 *                lanes: the signature runs on libuv's thread pool, as in the daemon (AsymmetricOps.sign).
 *
 * argv[2] is a JSON RawSpec; prints one JSON line {"raw": RawResult}.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import pkcs11js from "pkcs11js";
import { Pkcs11KeyStore } from "../../src/hsm/index.js";
import { aes256KeyTemplate, keyLabel, keyObjectId } from "../../src/hsm/objects/templates.js";
import { openToken } from "../../src/hsm/runtime/token.js";
import { HEADER_BYTES, IV_BYTES, TAG_BYTES } from "../../src/kms/ciphertext.js";
import { prepareSign } from "./sign-ops.js";

export type RawMode =
  | "gcm"
  | "rng+gcm"
  | "keystore"
  | "gcm-session"
  | "ecdsa-sign"
  | "ecdsa-sign-session"
  | "ecdsa-sign-async"
  | "pss-sign"
  | "pss-sign-async";

export interface RawSpec {
  readonly mode: RawMode;
  readonly modulePath: string;
  readonly tokenLabel: string;
  /** The PIN's file, not the PIN: argv is readable by every user of the machine. */
  readonly pinFile: string;
  readonly plaintextBytes: number;
  /** Concurrent lanes (one session each) of the *-async sign modes; the other modes run one. */
  readonly sessions: number;
  readonly warmupMs: number;
  readonly measureMs: number;
}

export interface RawResult {
  readonly mode: RawMode;
  /** Operations in flight at once: 1, or the sessions of an async mode. */
  readonly inFlight: number;
  readonly ops: number;
  readonly opsPerSec: number;
  /** Per-operation latencies in milliseconds. */
  readonly p50: number;
  readonly p99: number;
}

const spec = JSON.parse(process.argv[2] ?? "{}") as RawSpec;
const plaintext = Buffer.alloc(spec.plaintextBytes, 0xa5);
// The daemon's AAD for an empty encryption context: the blob header plus a 2-byte pair count.
const aad = Buffer.alloc(HEADER_BYTES + 2, 0x11);

const isAsync = spec.mode === "keystore" || spec.mode.endsWith("-async");
const ops = await prepare(spec);
await loop(ops, spec.warmupMs); // SoftHSM's object cache and V8's JIT settle before anything is recorded
const samples = new Float64Array(4_000_000);
const started = process.hrtime.bigint();
const n = await loop(ops, spec.measureMs, samples);
const elapsedS = Number(process.hrtime.bigint() - started) / 1e9;
const measured = samples.subarray(0, n).sort();
const result: RawResult = {
  mode: spec.mode,
  inFlight: ops.length,
  ops: n,
  opsPerSec: n / elapsedS,
  p50: measured[Math.ceil(0.5 * n) - 1]!,
  p99: measured[Math.ceil(0.99 * n) - 1]!,
};
process.stdout.write(`${JSON.stringify({ raw: result })}\n`);

/**
 * Runs each of `lanes` back to back until `ms` have passed, all lanes at once (one lane: a plain loop),
 * recording each call's latency when `samples` is given; returns the number of calls.
 */
async function loop(lanes: readonly (() => unknown)[], ms: number, samples?: Float64Array): Promise<number> {
  const end = process.hrtime.bigint() + BigInt(ms) * 1_000_000n;
  const cap = samples?.length ?? Infinity;
  let n = 0;
  const lane = async (fn: () => unknown) => {
    for (let t0 = process.hrtime.bigint(); t0 < end && n < cap; n++) {
      if (isAsync) await fn();
      else fn();
      const t1 = process.hrtime.bigint();
      if (samples) samples[n] = Number(t1 - t0) / 1e6;
      t0 = t1;
    }
  };
  await Promise.all(lanes.map(lane));
  return Math.min(n, cap);
}

/** Opens the token the way the daemon does (find by label, log in), creates a key, returns the lanes. */
async function prepare(s: RawSpec): Promise<(() => unknown)[]> {
  const pin = readFileSync(s.pinFile, "utf8").trim();
  const tokenOpts = { modulePath: s.modulePath, tokenLabel: s.tokenLabel, pin, maxSessions: 8 };
  const keyId = randomUUID();
  if (s.mode === "keystore") {
    const store = Pkcs11KeyStore.open("bench", tokenOpts);
    const ref = { keyId, version: 1 };
    await store.generateAesKey(ref);
    return [
      async () => {
        const iv = await store.generateRandom(IV_BYTES);
        return store.encryptAesGcm(ref, iv, aad, plaintext);
      },
    ];
  }
  const { mod, slot } = openToken(tokenOpts);
  if (s.mode.includes("-sign")) {
    const sign = prepareSign(mod, slot, s.mode.startsWith("ecdsa") ? "ecdsa" : "pss", s.sessions, s.mode === "ecdsa-sign-session");
    return isAsync ? sign.async : [sign.sync];
  }
  // Login is per token, so this session of our own is logged in too.
  const session = mod.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  const template = aes256KeyTemplate(keyLabel(keyId, 1), keyObjectId(keyId, 1));
  const tokenKey = mod.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, template);
  const key =
    s.mode === "gcm-session" ? mod.C_CopyObject(session, tokenKey, [{ type: pkcs11js.CKA_TOKEN, value: false }]) : tokenKey;
  const iv = Buffer.alloc(IV_BYTES);
  const out = Buffer.alloc(plaintext.length + TAG_BYTES);
  const mechanism: pkcs11js.Mechanism = {
    mechanism: pkcs11js.CKM_AES_GCM,
    parameter: {
      type: pkcs11js.CK_PARAMS_AES_GCM,
      iv,
      aad,
      ivBits: IV_BYTES * 8,
      tagBits: TAG_BYTES * 8,
    } as pkcs11js.IParams,
  };
  let counter = 0;
  const encrypt = () => {
    // A GCM IV must never repeat under one key: a counter in the IV is enough here (and costs nothing).
    if (s.mode === "rng+gcm") mod.C_GenerateRandom(session, iv);
    else iv.writeUInt32BE(++counter, IV_BYTES - 4);
    mod.C_EncryptInit(session, mechanism, key);
    return mod.C_Encrypt(session, plaintext, out);
  };
  return [encrypt];
}
