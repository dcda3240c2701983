import { join } from "node:path";
import { Pkcs11KeyStore } from "../../src/hsm/index.js";
import type { Clock, KeyStore } from "../../src/kms/ports.js";
import { KmsService } from "../../src/kms/service.js";
import { SqliteMetadataStore } from "../../src/store/sqlite-metadata-store.js";
import type { TestToken } from "./softhsm.js";
import { INTERNAL_CALLER } from "../../src/kms/caller.js";

export const PARTITION = { region: "eu-west-3", accountId: "123456789012" };

export interface TestService {
  service: KmsService;
  store: Pkcs11KeyStore;
  metadata: SqliteMetadataStore;
  stores: Map<string, KeyStore>;
}

/** A real service: SQLite in the token's temp dir and the SoftHSM2 token itself. No fakes. */
export function openService(token: TestToken, clock: Clock = { now: () => new Date() }): TestService {
  const store = Pkcs11KeyStore.open("default", {
    modulePath: token.modulePath,
    tokenLabel: token.label,
    pin: token.pin,
    maxSessions: 4,
  });
  const metadata = new SqliteMetadataStore(join(token.dir, "p11kms.db"));
  const stores = new Map<string, KeyStore>([["default", store]]);
  const service = new KmsService({
    metadata,
    keyStores: stores,
    defaultKeyStoreId: "default",
    clock,
    partition: PARTITION,
  }, INTERNAL_CALLER); // these tests exercise the operations, not authorization (test/hsm/authorization.test.ts does)
  return { service, store, metadata, stores };
}
