import * as asym from "./asymmetric-operations.js";
import * as crypto from "./crypto-operations.js";
import * as pairs from "./data-key-pairs.js";
import type { ServiceDeps } from "./deps.js";
import * as keys from "./key-operations.js";
import * as mac from "./mac-operations.js";

/**
 * The service layer: one method per KMS operation, shared by every API facade. Methods take and return
 * plain domain objects and throw only KmsError (anything else is a bug the facades report as internal).
 */
export class KmsService {
  constructor(readonly deps: ServiceDeps) {}

  createKey = (req: keys.CreateKeyRequest) => keys.createKey(this.deps, req);
  describeKey = (req: Parameters<typeof keys.describeKey>[1]) => keys.describeKey(this.deps, req);
  listKeys = (req: Parameters<typeof keys.listKeys>[1]) => keys.listKeys(this.deps, req);

  encrypt = (req: crypto.EncryptRequest) => crypto.encrypt(this.deps, req);
  decrypt = (req: crypto.DecryptRequest) => crypto.decrypt(this.deps, req);
  reEncrypt = (req: crypto.ReEncryptRequest) => crypto.reEncrypt(this.deps, req);
  generateDataKey = (req: crypto.GenerateDataKeyRequest) => crypto.generateDataKey(this.deps, req);
  generateDataKeyWithoutPlaintext = (req: crypto.GenerateDataKeyRequest) =>
    crypto.generateDataKeyWithoutPlaintext(this.deps, req);
  generateRandom = (req: Parameters<typeof crypto.generateRandom>[1]) => crypto.generateRandom(this.deps, req);

  getPublicKey = (req: Parameters<typeof asym.getPublicKey>[1]) => asym.getPublicKey(this.deps, req);
  sign = (req: asym.SignRequest) => asym.sign(this.deps, req);
  verify = (req: asym.VerifyRequest) => asym.verify(this.deps, req);
  generateDataKeyPair = (req: pairs.GenerateDataKeyPairRequest) => pairs.generateDataKeyPair(this.deps, req);
  generateDataKeyPairWithoutPlaintext = (req: pairs.GenerateDataKeyPairRequest) =>
    pairs.generateDataKeyPairWithoutPlaintext(this.deps, req);

  generateMac = (req: mac.GenerateMacRequest) => mac.generateMac(this.deps, req);
  verifyMac = (req: mac.VerifyMacRequest) => mac.verifyMac(this.deps, req);
}
