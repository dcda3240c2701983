import pkcs11js from "pkcs11js";
import { loadModule } from "../../src/hsm/runtime/module.js";
import type { TestToken } from "./softhsm.js";

/**
 * Direct PKCS#11 access to a test token, beside the key store, to inspect what p11kms left on it.
 * Login is per token and process, so sessions opened here share the key store's login.
 */
export class TokenInspector {
  readonly mod: pkcs11js.PKCS11;
  readonly session: pkcs11js.Handle;

  constructor(token: TestToken) {
    this.mod = loadModule(token.modulePath);
    const slot = this.mod.C_GetSlotList(true).find((s) => this.mod.C_GetTokenInfo(s).label.trim() === token.label);
    if (!slot) throw new Error(`token ${token.label} not found`);
    this.session = this.mod.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    try {
      this.mod.C_Login(this.session, pkcs11js.CKU_USER, token.pin);
    } catch (err) {
      if ((err as { code?: number }).code !== 0x100) throw err; // already logged in via the key store
    }
  }

  /** Every secret key object on the token, with its label. */
  secretKeys(): { handle: pkcs11js.Handle; label: string }[] {
    return this.objects(pkcs11js.CKO_SECRET_KEY);
  }

  /** Every object of a class (CKO_SECRET_KEY, CKO_PRIVATE_KEY, CKO_PUBLIC_KEY) on the token, with its label. */
  objects(cls: number): { handle: pkcs11js.Handle; label: string }[] {
    this.mod.C_FindObjectsInit(this.session, [{ type: pkcs11js.CKA_CLASS, value: cls }]);
    const handles = this.mod.C_FindObjects(this.session, 100_000);
    this.mod.C_FindObjectsFinal(this.session);
    return handles.map((handle) => ({
      handle,
      label: this.mod.C_GetAttributeValue(this.session, handle, [{ type: pkcs11js.CKA_LABEL }])[0]!.value!.toString(),
    }));
  }

  /** The token object (not a session copy) of a secret key. */
  find(label: string): pkcs11js.Handle | undefined {
    return this.secretKeys().find((k) => k.label === label && this.bool(k.handle, pkcs11js.CKA_TOKEN))?.handle;
  }

  /** Session objects (CKA_TOKEN=false) of a class with this label: the key store's in-memory copies. */
  sessionCopies(label: string, cls: number = pkcs11js.CKO_SECRET_KEY): pkcs11js.Handle[] {
    return this.objects(cls)
      .filter((o) => o.label === label && !this.bool(o.handle, pkcs11js.CKA_TOKEN))
      .map((o) => o.handle);
  }

  bool(handle: pkcs11js.Handle, type: number): boolean {
    const v = this.mod.C_GetAttributeValue(this.session, handle, [{ type }])[0]!.value!;
    return v[0] === 1;
  }

  /** A session AES key that may wrap, to try wrapping p11kms keys out with. */
  wrappingKey(): pkcs11js.Handle {
    return this.mod.C_GenerateKey(this.session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_WRAP, value: true },
      { type: pkcs11js.CKA_UNWRAP, value: true },
    ]);
  }

  /** The CK_RV a call failed with, or "ok" if it succeeded. */
  rv(fn: () => unknown): number | "ok" {
    try {
      fn();
      return "ok";
    } catch (err) {
      return (err as { code?: number }).code ?? -1;
    }
  }
}
