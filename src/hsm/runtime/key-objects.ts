import pkcs11js from "pkcs11js";
import type { KeyMaterialRef } from "../../kms/ports.js";
import type { CopyState } from "./session-copies.js";
import { keyLabel, parseKeyLabel } from "../objects/templates.js";

/**
 * The objects behind one backing key: a secret key (AES, HMAC), or a private/public key pair; and the
 * in-memory session copies of the hot ones ({@link CopyState}).
 */
export interface KeyObjects extends CopyState {
  secret?: pkcs11js.Handle;
  privateKey?: pkcs11js.Handle;
  publicKey?: pkcs11js.Handle;
  /** DER SPKI, read once from the public key object (public keys never change). */
  spki?: Buffer;
}

const SLOTS = new Map<number, "secret" | "privateKey" | "publicKey">([
  [pkcs11js.CKO_SECRET_KEY, "secret"],
  [pkcs11js.CKO_PRIVATE_KEY, "privateKey"],
  [pkcs11js.CKO_PUBLIC_KEY, "publicKey"],
]);

/** A token object p11kms keeps outside the key map (BYOK wrapping keys, the import token key), by label. */
export interface OtherObject {
  readonly cls: number;
  readonly handle: pkcs11js.Handle;
}

/** A token object's handle, class and label, as the start-up scan reads them. */
export interface TokenObject {
  readonly handle: pkcs11js.Handle;
  readonly cls: number;
  readonly label: string;
}

/**
 * Every token object's class and label: one search, then one C_GetAttributeValue per object (the bulk of
 * start-up time on a large token: SoftHSM2 re-checks the object's file on each call, ~0.1 ms). Objects
 * whose class cannot be read are left out.
 */
export function readTokenObjects(mod: pkcs11js.PKCS11, session: pkcs11js.Handle): TokenObject[] {
  // Token objects only: session copies of hot keys (session-copies.ts) keep the label of their original.
  mod.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_TOKEN, value: true }]);
  const handles: pkcs11js.Handle[] = [];
  try {
    for (let batch = mod.C_FindObjects(session, 1024); batch.length > 0; batch = mod.C_FindObjects(session, 1024)) handles.push(...batch);
  } finally {
    mod.C_FindObjectsFinal(session);
  }
  const objects: TokenObject[] = [];
  for (const handle of handles) {
    const [cls, lab] = mod.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_CLASS }, { type: pkcs11js.CKA_LABEL }]);
    if (!cls?.value || cls.value.length < 4) continue;
    objects.push({ handle, cls: cls.value.readUInt32LE(0), label: lab?.value?.toString("utf8") ?? "" });
  }
  return objects;
}

/**
 * Handles of p11kms's objects by label, found once at open. SoftHSM2's C_FindObjects scans every object on
 * the token, so searching per request would make latency grow with the number of keys.
 */
export class KeyObjectCache {
  private readonly byLabel = new Map<string, KeyObjects>();
  /** Other `p11kms-…` token objects seen by the scan (ops/import.ts takes them from here). */
  readonly others = new Map<string, OtherObject[]>();

  /**
   * One search for every token object, and one C_GetAttributeValue (class and label) per object. With
   * SoftHSM2 each search costs a pass over all objects (~0.2–0.3 s at 10,000 keys), so this is one pass
   * instead of one per class (docs/benchmarks.md, scale).
   */
  scan(mod: pkcs11js.PKCS11, session: pkcs11js.Handle): void {
    this.fill(readTokenObjects(mod, session));
  }

  /** Sorts objects found by {@link readTokenObjects} (here, or in the start-up worker: prepared-open.ts). */
  fill(objects: readonly TokenObject[]): void {
    for (const { handle: h, cls, label } of objects) {
      const slot = SLOTS.get(cls);
      if (!slot) continue;
      if (parseKeyLabel(label)) this.entry(label)[slot] = h;
      else if (label.startsWith("p11kms-")) {
        const list = this.others.get(label) ?? [];
        list.push({ cls, handle: h });
        this.others.set(label, list);
      }
    }
  }

  /**
   * Looks one key's objects up again by label (after one of its handles stopped working) and replaces its
   * entry: true when usable material was found, false when the objects are gone (the entry is removed).
   * One search (a pass over every object with SoftHSM2), so only for that rare case.
   */
  refind(mod: pkcs11js.PKCS11, session: pkcs11js.Handle, ref: KeyMaterialRef): boolean {
    const label = keyLabel(ref.keyId, ref.version);
    mod.C_FindObjectsInit(session, [
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_LABEL, value: label },
    ]);
    let handles: pkcs11js.Handle[];
    try {
      handles = mod.C_FindObjects(session, 16);
    } finally {
      mod.C_FindObjectsFinal(session);
    }
    const found: KeyObjects = {};
    for (const h of handles) {
      const [cls] = mod.C_GetAttributeValue(session, h, [{ type: pkcs11js.CKA_CLASS }]);
      const slot = cls?.value && cls.value.length >= 4 ? SLOTS.get(cls.value.readUInt32LE(0)) : undefined;
      if (slot) found[slot] = h;
    }
    this.byLabel.delete(label);
    if (found.secret === undefined && found.privateKey === undefined && found.publicKey === undefined) return false;
    this.byLabel.set(label, found);
    return this.isComplete(ref);
  }

  get(ref: KeyMaterialRef): KeyObjects | undefined {
    return this.byLabel.get(keyLabel(ref.keyId, ref.version));
  }

  getByLabel(label: string): KeyObjects | undefined {
    return this.byLabel.get(label);
  }

  has(ref: KeyMaterialRef): boolean {
    return this.byLabel.has(keyLabel(ref.keyId, ref.version));
  }

  set(ref: KeyMaterialRef, objects: KeyObjects): void {
    this.byLabel.set(keyLabel(ref.keyId, ref.version), objects);
  }

  /** Usable material: a secret key, or both halves of a pair (verification needs the public key object). */
  isComplete(ref: KeyMaterialRef): boolean {
    const o = this.get(ref);
    return o !== undefined && (o.secret !== undefined || (o.privateKey !== undefined && o.publicKey !== undefined));
  }

  delete(ref: KeyMaterialRef): void {
    this.byLabel.delete(keyLabel(ref.keyId, ref.version));
  }

  values(): IterableIterator<KeyObjects> {
    return this.byLabel.values();
  }

  refs(): KeyMaterialRef[] {
    return [...this.byLabel.keys()].map((l) => parseKeyLabel(l)!);
  }

  private entry(label: string): KeyObjects {
    let e = this.byLabel.get(label);
    if (!e) this.byLabel.set(label, (e = {}));
    return e;
  }
}

/** Every handle of a backing key (for destroy and quarantine). */
export function handlesOf(o: KeyObjects): pkcs11js.Handle[] {
  return [o.secret, o.privateKey, o.publicKey].filter((h): h is pkcs11js.Handle => h !== undefined);
}
