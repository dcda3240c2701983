import Database from "better-sqlite3";
import type { MetadataStore, NewKey } from "../kms/ports.js";
import type { KeyRecord, KeyState, Tag } from "../kms/types.js";
import { SqliteLifecycleStore } from "./sqlite-lifecycle.js";
import { type KeyRow, toRecord } from "./sqlite-rows.js";
import { MIGRATIONS } from "./sqlite-schema.js";

/**
 * The embedded metadata store (SQLite through better-sqlite3). Synchronous underneath; the async surface is
 * the MetadataStore port's, so PostgreSQL can replace it. WAL with synchronous=FULL: a key acknowledged
 * to a client survives a power cut.
 */
export class SqliteMetadataStore extends SqliteLifecycleStore implements MetadataStore {
  private readonly stmts;

  constructor(path: string) {
    super(openDatabase(path));
    this.stmts = {
      insertKey: this.db.prepare(
        `INSERT INTO keys (key_id, key_store_id, description, key_spec, key_usage, origin, key_state,
                           creation_date, deletion_date, current_version)
         VALUES (@key_id, @key_store_id, @description, @key_spec, @key_usage, @origin, @key_state,
                 @creation_date, @deletion_date, @current_version)`,
      ),
      insertVersion: this.db.prepare(`INSERT INTO key_versions (key_id, version, created_at) VALUES (?, ?, ?)`),
      insertTag: this.db.prepare(`INSERT INTO tags (key_id, tag_key, tag_value) VALUES (?, ?, ?)`),
      insertPolicy: this.db.prepare(`INSERT INTO key_policies (key_id, policy) VALUES (?, ?)`),
      getKey: this.db.prepare<[string], KeyRow>(`SELECT * FROM keys WHERE key_id = ?`),
      listKeys: this.db.prepare<[string, number], KeyRow>(
        `SELECT * FROM keys WHERE key_id > ? AND key_state <> 'Creating' AND deleted_at IS NULL ORDER BY key_id LIMIT ?`,
      ),
      listAllKeys: this.db.prepare<[string, number, number], KeyRow>(
        `SELECT * FROM keys WHERE key_id > ? AND (deleted_at IS NULL OR ?) ORDER BY key_id LIMIT ?`,
      ),
      setState: this.db.prepare(`UPDATE keys SET key_state = ? WHERE key_id = ? AND key_state = ?`),
      deleteKey: this.db.prepare(`DELETE FROM keys WHERE key_id = ?`),
      getTags: this.db.prepare<[string], { tag_key: string; tag_value: string }>(
        `SELECT tag_key, tag_value FROM tags WHERE key_id = ? ORDER BY tag_key`,
      ),
    };
  }

  async insertKey({ record: r, tags, policy }: NewKey): Promise<void> {
    this.db.transaction(() => {
      this.stmts.insertKey.run({
        key_id: r.keyId,
        key_store_id: r.keyStoreId,
        description: r.description,
        key_spec: r.keySpec,
        key_usage: r.keyUsage,
        origin: r.origin,
        key_state: r.keyState,
        creation_date: r.creationDate.getTime(),
        deletion_date: r.deletionDate?.getTime() ?? null,
        current_version: r.currentVersion,
      });
      for (let v = 1; v <= r.currentVersion; v++) this.stmts.insertVersion.run(r.keyId, v, r.creationDate.getTime());
      for (const t of tags) this.stmts.insertTag.run(r.keyId, t.tagKey, t.tagValue);
      if (policy !== undefined) this.stmts.insertPolicy.run(r.keyId, policy);
    })();
  }

  async getKey(keyId: string): Promise<KeyRecord | undefined> {
    const row = this.stmts.getKey.get(keyId);
    return row ? toRecord(row) : undefined;
  }

  async listKeys(opts: { afterKeyId?: string | undefined; limit: number; includeCreating?: boolean; includeDeleted?: boolean }): Promise<KeyRecord[]> {
    const after = opts.afterKeyId ?? "";
    const rows = opts.includeCreating
      ? this.stmts.listAllKeys.all(after, opts.includeDeleted ? 1 : 0, opts.limit)
      : this.stmts.listKeys.all(after, opts.limit);
    return rows.map(toRecord);
  }

  async updateKeyState(keyId: string, from: KeyState, to: KeyState): Promise<boolean> {
    return this.stmts.setState.run(to, keyId, from).changes === 1;
  }

  async deleteKey(keyId: string): Promise<void> {
    this.stmts.deleteKey.run(keyId);
  }

  async getTags(keyId: string): Promise<Tag[]> {
    return this.stmts.getTags.all(keyId).map((r) => ({ tagKey: r.tag_key, tagValue: r.tag_value }));
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

/** Opens the database (WAL, synchronous=FULL, foreign keys) and applies pending migrations. */
function openDatabase(path: string): Database.Database {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  const done = db.pragma("user_version", { simple: true }) as number;
  for (let i = done; i < MIGRATIONS.length; i++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[i]!);
      db.pragma(`user_version = ${i + 1}`);
    })();
  }
  return db;
}
