import type { AliasMetadata, KeyStoreMetadata, KeyStoreRecord, LifecycleMetadata, RotationMetadata } from "../kms/ports.js";
import type { AliasRecord, KeyRecord, KeyState, RotationSchedule, RotationType, Tag, VersionRecord } from "../kms/types.js";
import { SqliteImportStore } from "./sqlite-imports.js";
import { type KeyRow, toRecord } from "./sqlite-rows.js";

interface AliasRow {
  alias_name: string;
  target_key_id: string;
  creation_date: number;
  last_updated_date: number;
}
interface RotationRow {
  key_id: string;
  period_days: number;
  next_rotation_date: number;
}
interface VersionRow {
  version: number;
  created_at: number;
  rotation_type: string | null;
}

/**
 * The lifecycle half of the SQLite store: states and deletion, tags, aliases, versions and rotation
 * schedules, key store state. Multi-statement changes run in one transaction; compare-and-set conditions
 * are in the SQL, so a concurrent change is seen as "not applied" rather than overwritten.
 */
export class SqliteLifecycleStore extends SqliteImportStore implements LifecycleMetadata, AliasMetadata, RotationMetadata, KeyStoreMetadata {
  async transitionKey(keyId: string, from: KeyState, to: KeyState, deletionDate: Date | undefined): Promise<boolean> {
    return (
      this.db
        .prepare(`UPDATE keys SET key_state = ?, deletion_date = ? WHERE key_id = ? AND key_state = ? AND deleted_at IS NULL`)
        .run(to, deletionDate?.getTime() ?? null, keyId, from).changes === 1
    );
  }

  async markDeleted(keyId: string, at: Date): Promise<boolean> {
    return this.db.transaction(() => {
      const changed = this.db
        .prepare(
          `UPDATE keys SET deleted_at = ? WHERE key_id = ? AND key_state = 'PendingDeletion' AND deleted_at IS NULL
             AND deletion_date <= ?`,
        )
        .run(at.getTime(), keyId, at.getTime()).changes;
      if (changed !== 1) return false;
      this.db.prepare(`DELETE FROM aliases WHERE target_key_id = ?`).run(keyId);
      this.db.prepare(`DELETE FROM key_rotation WHERE key_id = ?`).run(keyId);
      this.db.prepare(`DELETE FROM grants WHERE key_id = ?`).run(keyId); // AWS deletes a key's grants with it
      return true;
    })();
  }

  async dueDeletions(now: Date, limit: number): Promise<KeyRecord[]> {
    return this.db
      .prepare<[number, number], KeyRow>(
        `SELECT * FROM keys WHERE key_state = 'PendingDeletion' AND deleted_at IS NULL AND deletion_date <= ?
         ORDER BY deletion_date LIMIT ?`,
      )
      .all(now.getTime(), limit)
      .map(toRecord);
  }

  async updateDescription(keyId: string, description: string): Promise<void> {
    this.db.prepare(`UPDATE keys SET description = ? WHERE key_id = ?`).run(description, keyId);
  }

  async putTags(keyId: string, tags: readonly Tag[], max: number): Promise<boolean> {
    const upsert = this.db.prepare(
      `INSERT INTO tags (key_id, tag_key, tag_value) VALUES (?, ?, ?)
       ON CONFLICT (key_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value`,
    );
    try {
      this.db.transaction(() => {
        for (const t of tags) upsert.run(keyId, t.tagKey, t.tagValue);
        const { n } = this.db.prepare<[string], { n: number }>(`SELECT count(*) AS n FROM tags WHERE key_id = ?`).get(keyId)!;
        // Throwing rolls the transaction back: over the limit, nothing of this request is written.
        if (n > max) throw new TagLimit();
      })();
      return true;
    } catch (err) {
      if (err instanceof TagLimit) return false;
      throw err;
    }
  }

  async removeTags(keyId: string, tagKeys: readonly string[]): Promise<void> {
    const del = this.db.prepare(`DELETE FROM tags WHERE key_id = ? AND tag_key = ?`);
    this.db.transaction(() => tagKeys.forEach((k) => del.run(keyId, k)))();
  }

  async listTags(keyId: string, opts: { afterTagKey?: string | undefined; limit: number }): Promise<Tag[]> {
    return this.db
      .prepare<[string, string, number], { tag_key: string; tag_value: string }>(
        `SELECT tag_key, tag_value FROM tags WHERE key_id = ? AND tag_key > ? ORDER BY tag_key LIMIT ?`,
      )
      .all(keyId, opts.afterTagKey ?? "", opts.limit)
      .map((r) => ({ tagKey: r.tag_key, tagValue: r.tag_value }));
  }

  async insertAlias(a: AliasRecord, maxPerKey: number): Promise<"ok" | "exists" | "limit"> {
    return this.db.transaction(() => {
      if (this.db.prepare(`SELECT 1 FROM aliases WHERE alias_name = ?`).get(a.aliasName)) return "exists" as const;
      if (this.aliasCount(a.targetKeyId) >= maxPerKey) return "limit" as const;
      this.db
        .prepare(`INSERT INTO aliases (alias_name, target_key_id, creation_date, last_updated_date) VALUES (?, ?, ?, ?)`)
        .run(a.aliasName, a.targetKeyId, a.creationDate.getTime(), a.lastUpdatedDate.getTime());
      return "ok" as const;
    }).immediate();
  }

  async getAlias(aliasName: string): Promise<AliasRecord | undefined> {
    const row = this.db.prepare<[string], AliasRow>(`SELECT * FROM aliases WHERE alias_name = ?`).get(aliasName);
    return row ? toAlias(row) : undefined;
  }

  async retargetAlias(aliasName: string, targetKeyId: string, at: Date, maxPerKey: number): Promise<"ok" | "missing" | "limit"> {
    return this.db.transaction(() => {
      const row = this.db.prepare<[string], AliasRow>(`SELECT * FROM aliases WHERE alias_name = ?`).get(aliasName);
      if (!row) return "missing" as const;
      if (row.target_key_id !== targetKeyId && this.aliasCount(targetKeyId) >= maxPerKey) return "limit" as const;
      this.db
        .prepare(`UPDATE aliases SET target_key_id = ?, last_updated_date = ? WHERE alias_name = ?`)
        .run(targetKeyId, at.getTime(), aliasName);
      return "ok" as const;
    }).immediate();
  }

  async deleteAlias(aliasName: string): Promise<boolean> {
    return this.db.prepare(`DELETE FROM aliases WHERE alias_name = ?`).run(aliasName).changes === 1;
  }

  async listAliases(opts: { keyId?: string | undefined; afterName?: string | undefined; limit: number }): Promise<AliasRecord[]> {
    const after = opts.afterName ?? "";
    const rows = opts.keyId
      ? this.db
          .prepare<[string, string, number], AliasRow>(
            `SELECT * FROM aliases WHERE target_key_id = ? AND alias_name > ? ORDER BY alias_name LIMIT ?`,
          )
          .all(opts.keyId, after, opts.limit)
      : this.db
          .prepare<[string, number], AliasRow>(`SELECT * FROM aliases WHERE alias_name > ? ORDER BY alias_name LIMIT ?`)
          .all(after, opts.limit);
    return rows.map(toAlias);
  }

  async getRotation(keyId: string): Promise<RotationSchedule | undefined> {
    const row = this.db.prepare<[string], RotationRow>(`SELECT * FROM key_rotation WHERE key_id = ?`).get(keyId);
    return row ? toSchedule(row) : undefined;
  }

  async setRotation(keyId: string, schedule: RotationSchedule | undefined): Promise<void> {
    if (!schedule) {
      this.db.prepare(`DELETE FROM key_rotation WHERE key_id = ?`).run(keyId);
      return;
    }
    this.db
      .prepare(
        `INSERT INTO key_rotation (key_id, period_days, next_rotation_date) VALUES (?, ?, ?)
         ON CONFLICT (key_id) DO UPDATE SET period_days = excluded.period_days, next_rotation_date = excluded.next_rotation_date`,
      )
      .run(keyId, schedule.periodDays, schedule.nextRotationDate.getTime());
  }

  async addVersion(keyId: string, fromVersion: number, v: VersionRecord, nextRotationDate?: Date): Promise<boolean> {
    return this.db.transaction(() => {
      const moved = this.db
        .prepare(`UPDATE keys SET current_version = ? WHERE key_id = ? AND current_version = ? AND deleted_at IS NULL`)
        .run(v.version, keyId, fromVersion).changes;
      if (moved !== 1) return false;
      this.db
        .prepare(`INSERT INTO key_versions (key_id, version, created_at, rotation_type) VALUES (?, ?, ?, ?)`)
        .run(keyId, v.version, v.createdAt.getTime(), v.rotationType ?? null);
      if (nextRotationDate) {
        this.db.prepare(`UPDATE key_rotation SET next_rotation_date = ? WHERE key_id = ?`).run(nextRotationDate.getTime(), keyId);
      }
      return true;
    }).immediate();
  }

  async listVersions(keyId: string, opts: { afterVersion: number; limit: number }): Promise<VersionRecord[]> {
    return this.db
      .prepare<[string, number, number], VersionRow>(
        `SELECT version, created_at, rotation_type FROM key_versions WHERE key_id = ? AND version > ? ORDER BY version LIMIT ?`,
      )
      .all(keyId, opts.afterVersion, opts.limit)
      .map((r) => ({
        version: r.version,
        createdAt: new Date(r.created_at),
        rotationType: (r.rotation_type ?? undefined) as RotationType | undefined,
      }));
  }

  async countVersions(keyId: string, type: RotationType): Promise<number> {
    return this.db
      .prepare<[string, string], { n: number }>(`SELECT count(*) AS n FROM key_versions WHERE key_id = ? AND rotation_type = ?`)
      .get(keyId, type)!.n;
  }

  async dueRotations(now: Date, keyStoreIds: readonly string[]): Promise<RotationSchedule[]> {
    if (keyStoreIds.length === 0) return [];
    const stores = keyStoreIds.map(() => "?").join(", ");
    return this.db
      .prepare<unknown[], RotationRow>(
        `SELECT r.* FROM key_rotation r JOIN keys k ON k.key_id = r.key_id
         WHERE r.next_rotation_date <= ? AND k.key_state = 'Enabled' AND k.deleted_at IS NULL AND k.key_store_id IN (${stores})
         ORDER BY r.next_rotation_date`,
      )
      .all(now.getTime(), ...keyStoreIds)
      .map(toSchedule);
  }

  async getKeyStores(): Promise<KeyStoreRecord[]> {
    return this.db
      .prepare<[], { key_store_id: string; creation_date: number; connect: number }>(`SELECT * FROM key_stores ORDER BY key_store_id`)
      .all()
      .map((r) => ({ keyStoreId: r.key_store_id, creationDate: new Date(r.creation_date), connect: r.connect === 1 }));
  }

  async putKeyStore(r: KeyStoreRecord): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO key_stores (key_store_id, creation_date, connect) VALUES (?, ?, ?)
         ON CONFLICT (key_store_id) DO UPDATE SET connect = excluded.connect`,
      )
      .run(r.keyStoreId, r.creationDate.getTime(), r.connect ? 1 : 0);
  }

  private aliasCount(keyId: string): number {
    return this.db.prepare<[string], { n: number }>(`SELECT count(*) AS n FROM aliases WHERE target_key_id = ?`).get(keyId)!.n;
  }
}

class TagLimit extends Error {}

function toAlias(r: AliasRow): AliasRecord {
  return {
    aliasName: r.alias_name,
    targetKeyId: r.target_key_id,
    creationDate: new Date(r.creation_date),
    lastUpdatedDate: new Date(r.last_updated_date),
  };
}

function toSchedule(r: RotationRow): RotationSchedule {
  return { keyId: r.key_id, periodDays: r.period_days, nextRotationDate: new Date(r.next_rotation_date) };
}
