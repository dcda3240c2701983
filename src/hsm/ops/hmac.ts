import pkcs11js from "pkcs11js";
import { KmsError } from "../../kms/errors.js";
import type { KeyMaterialRef } from "../../kms/ports.js";
import type { HmacKeySpec, MacAlgorithm } from "../../kms/types.js";
import type { Device } from "../runtime/device.js";
import type { KeyObjectCache } from "../runtime/key-objects.js";
import { MAC_MECHANISMS } from "../objects/mechanisms.js";
import { isVerifyFailure, rvOf } from "../runtime/return-values.js";
import { hmacKeyTemplate, keyLabel, keyObjectId } from "../objects/templates.js";

/**
 * HMAC keys on the device. These calls stay synchronous: an HMAC over ≤ 4 KiB costs less on SoftHSM2 than
 * the 40–80 µs a hop to the thread pool adds (docs/benchmarks.md).
 */
export class HmacOps {
  constructor(
    private readonly device: Device,
    private readonly objects: KeyObjectCache,
    /** Whether the token enforces CKA_ALLOWED_MECHANISMS (see objects/capabilities.ts). */
    private readonly restrictMechanisms = false,
  ) {}

  async generateHmacKey(ref: KeyMaterialRef, spec: HmacKeySpec): Promise<void> {
    const label = keyLabel(ref.keyId, ref.version);
    if (this.objects.has(ref)) throw new Error(`key object ${label} already exists`);
    const handle = await this.device.run("generate hmac key", (s) =>
      this.device.mod.C_GenerateKey(
        s,
        { mechanism: pkcs11js.CKM_GENERIC_SECRET_KEY_GEN },
        hmacKeyTemplate(spec, label, keyObjectId(ref.keyId, ref.version), { restrict: this.restrictMechanisms }),
      ),
    );
    this.objects.set(ref, { secret: handle });
  }

  async generateMac(ref: KeyMaterialRef, algorithm: MacAlgorithm, message: Buffer): Promise<Buffer> {
    const key = this.secret(ref);
    const m = MAC_MECHANISMS[algorithm];
    return this.device.run("generate mac", (s) => {
      this.device.mod.C_SignInit(s, { mechanism: m.ckm }, key);
      return Buffer.from(this.device.mod.C_Sign(s, message, Buffer.alloc(m.bytes)));
    });
  }

  async verifyMac(ref: KeyMaterialRef, algorithm: MacAlgorithm, message: Buffer, mac: Buffer): Promise<boolean> {
    const key = this.secret(ref);
    return this.device.run("verify mac", (s) => {
      this.device.mod.C_VerifyInit(s, { mechanism: MAC_MECHANISMS[algorithm].ckm }, key);
      try {
        // The device compares; a MAC of the wrong length is CKR_SIGNATURE_LEN_RANGE, a mismatch SIGNATURE_INVALID.
        return this.device.mod.C_Verify(s, message, mac);
      } catch (err) {
        if (isVerifyFailure(rvOf(err))) return false;
        throw err;
      }
    });
  }

  private secret(ref: KeyMaterialRef): pkcs11js.Handle {
    const h = this.objects.get(ref)?.secret;
    if (h === undefined) {
      throw new KmsError("KMSInvalidStateException", `The key material of ${ref.keyId} is not available in its key store.`);
    }
    return h;
  }
}
