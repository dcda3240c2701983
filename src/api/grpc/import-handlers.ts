import type { KeyManagementServiceServer } from "../../gen/p11kms/v1/kms.js";
import type { KmsService } from "../../kms/service.js";
import type { UnaryWrapper } from "./lifecycle-handlers.js";

type ImportRpcs = "getParametersForImport" | "importKeyMaterial" | "deleteImportedKeyMaterial";

/** The BYOK RPCs. "" and empty bytes mean absent, as everywhere on gRPC; the service validates. */
export function importHandlers(service: KmsService, unary: UnaryWrapper): Pick<KeyManagementServiceServer, ImportRpcs> {
  return {
    getParametersForImport: unary("GetParametersForImport", (r) =>
      service.getParametersForImport({
        keyId: r.keyId,
        wrappingAlgorithm: r.wrappingAlgorithm || undefined,
        wrappingKeySpec: r.wrappingKeySpec || undefined,
      }),
    ),
    importKeyMaterial: unary("ImportKeyMaterial", async (r) => {
      await service.importKeyMaterial({
        keyId: r.keyId,
        importToken: r.importToken,
        encryptedKeyMaterial: r.encryptedKeyMaterial,
        expirationModel: r.expirationModel || undefined,
        validTo: r.validTo,
      });
      return {};
    }),
    deleteImportedKeyMaterial: unary("DeleteImportedKeyMaterial", async (r) => {
      await service.deleteImportedKeyMaterial(r);
      return {};
    }),
  };
}
