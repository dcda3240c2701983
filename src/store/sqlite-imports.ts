import type { ImportMetadata, ImportRecord } from "../kms/ports.js";
import type { ExpirationModel, KeyRecord, KeyState } from "../kms/types.js";
import { SqliteAccessStore } from "./sqlite-access.js";
import { type KeyRow, toRecord } from "./sqlite-rows.js";

interface MaterialRow {
  key_id: string;
  key_check_value: Buffer;
  expiration_model: string;
  valid_to: number | null;
}

/**
 * BYOK bookkeeping in SQLite. The state change and the material row move together in one transaction,
 * so an expiry or import is never half recorded.
 */
export class SqliteImportStore extends SqliteAccessStore implements ImportMetadata {

  async getImport(keyId: string): Promise<ImportRecord | undefined> {
    const r = this.db.prepare<[string], MaterialRow>(`SELECT * FROM key_material WHERE key_id = ?`).get(keyId);
    if (!r) return undefined;
    return {
      keyId: r.key_id,
      keyCheckValue: Buffer.from(r.key_check_value),
      expirationModel: r.expiration_model as ExpirationModel,
      validTo: r.valid_to === null ? undefined : new Date(r.valid_to),
    };
  }

  async completeImport(rec: ImportRecord): Promise<boolean> {
    return this.db.transaction(() => {
      const changed = this.db
        .prepare(`UPDATE keys SET key_state = 'Enabled' WHERE key_id = ? AND key_state = 'PendingImport' AND deleted_at IS NULL`)
        .run(rec.keyId).changes;
      if (changed !== 1) return false;
      this.db
        .prepare(
          `INSERT INTO key_material (key_id, key_check_value, expiration_model, valid_to) VALUES (?, ?, ?, ?)
           ON CONFLICT (key_id) DO UPDATE SET expiration_model = excluded.expiration_model, valid_to = excluded.valid_to`,
        )
        .run(rec.keyId, rec.keyCheckValue, rec.expirationModel, rec.validTo?.getTime() ?? null);
      return true;
    })();
  }

  async updateImportExpiry(rec: Omit<ImportRecord, "keyCheckValue">, state: KeyState): Promise<boolean> {
    const changed = this.db
      .prepare(
        `UPDATE key_material SET expiration_model = ?, valid_to = ?
         WHERE key_id = ? AND EXISTS (SELECT 1 FROM keys WHERE key_id = ? AND key_state = ? AND deleted_at IS NULL)`,
      )
      .run(rec.expirationModel, rec.validTo?.getTime() ?? null, rec.keyId, rec.keyId, state).changes;
    return changed === 1;
  }

  async removeMaterial(keyId: string, from: KeyState): Promise<boolean> {
    return this.db.transaction(() => {
      const changed = this.db
        .prepare(`UPDATE keys SET key_state = 'PendingImport' WHERE key_id = ? AND key_state = ? AND deleted_at IS NULL`)
        .run(keyId, from).changes;
      if (changed !== 1) return false;
      this.db.prepare(`UPDATE key_material SET valid_to = NULL WHERE key_id = ?`).run(keyId);
      return true;
    })();
  }

  async dueMaterialExpirations(now: Date, limit: number): Promise<KeyRecord[]> {
    return this.db
      .prepare<[number, number], KeyRow>(
        `SELECT k.* FROM keys k JOIN key_material m ON m.key_id = k.key_id
         WHERE m.valid_to IS NOT NULL AND m.valid_to <= ? AND k.key_state IN ('Enabled', 'Disabled') AND k.deleted_at IS NULL
         ORDER BY m.valid_to LIMIT ?`,
      )
      .all(now.getTime(), limit)
      .map(toRecord);
  }
}
