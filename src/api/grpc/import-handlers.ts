import type { KeyManagementServiceServer } from "../../gen/p11kms/v1/kms.js";
import type { UnaryWrapper } from "./lifecycle-handlers.js";

type ImportRpcs = "getParametersForImport" | "importKeyMaterial" | "deleteImportedKeyMaterial";

/** The BYOK RPCs. "" and empty bytes mean absent, as everywhere on gRPC; the service validates. */
export function importHandlers(unary: UnaryWrapper): Pick<KeyManagementServiceServer, ImportRpcs> {
  return {
    getParametersForImport: unary("GetParametersForImport", (r, service) =>
      service.getParametersForImport({
        keyId: r.keyId,
        wrappingAlgorithm: r.wrappingAlgorithm || undefined,
        wrappingKeySpec: r.wrappingKeySpec || undefined,
      }),
    ),
    importKeyMaterial: unary("ImportKeyMaterial", async (r, service) => {
      await service.importKeyMaterial({
        keyId: r.keyId,
        importToken: r.importToken,
        encryptedKeyMaterial: r.encryptedKeyMaterial,
        expirationModel: r.expirationModel || undefined,
        validTo: r.validTo,
      });
      return {};
    }),
    deleteImportedKeyMaterial: unary("DeleteImportedKeyMaterial", async (r, service) => {
      await service.deleteImportedKeyMaterial(r);
      return {};
    }),
  };
}
