import Database from "better-sqlite3";
import type { MetadataStore, NewKey } from "../kms/ports.js";
import type { KeyRecord, KeySpec, KeyState, KeyUsage, Origin, Tag } from "../kms/types.js";
import { MIGRATIONS } from "./sqlite-schema.js";

interface KeyRow {
  key_id: string;
  key_store_id: string;
  description: string;
  key_spec: string;
  key_usage: string;
  origin: string;
  key_state: string;
  creation_date: number;
  deletion_date: number | null;
  current_version: number;
}

/**
 * The embedded metadata store (SQLite through better-sqlite3). Synchronous underneath; the async surface is
 * the MetadataStore port's, so PostgreSQL can replace it. WAL with synchronous=FULL: a key acknowledged
 * to a client survives a power cut.
 */
export class SqliteMetadataStore implements MetadataStore {
  private readonly db: Database.Database;
  private readonly stmts;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = FULL");
    this.db.pragma("foreign_keys = ON");
    this.db.pragma("busy_timeout = 5000");
    this.migrate();
    this.stmts = {
      insertKey: this.db.prepare(
        `INSERT INTO keys (key_id, key_store_id, description, key_spec, key_usage, origin, key_state,
                           creation_date, deletion_date, current_version)
         VALUES (@key_id, @key_store_id, @description, @key_spec, @key_usage, @origin, @key_state,
                 @creation_date, @deletion_date, @current_version)`,
      ),
      insertVersion: this.db.prepare(`INSERT INTO key_versions (key_id, version, created_at) VALUES (?, ?, ?)`),
      insertTag: this.db.prepare(`INSERT INTO tags (key_id, tag_key, tag_value) VALUES (?, ?, ?)`),
      getKey: this.db.prepare<[string], KeyRow>(`SELECT * FROM keys WHERE key_id = ?`),
      listKeys: this.db.prepare<[string, number], KeyRow>(
        `SELECT * FROM keys WHERE key_id > ? AND key_state <> 'Creating' ORDER BY key_id LIMIT ?`,
      ),
      listAllKeys: this.db.prepare<[string, number], KeyRow>(`SELECT * FROM keys WHERE key_id > ? ORDER BY key_id LIMIT ?`),
      setState: this.db.prepare(`UPDATE keys SET key_state = ? WHERE key_id = ? AND key_state = ?`),
      deleteKey: this.db.prepare(`DELETE FROM keys WHERE key_id = ?`),
      getTags: this.db.prepare<[string], { tag_key: string; tag_value: string }>(
        `SELECT tag_key, tag_value FROM tags WHERE key_id = ? ORDER BY tag_key`,
      ),
    };
  }

  async insertKey({ record: r, tags }: NewKey): Promise<void> {
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
    })();
  }

  async getKey(keyId: string): Promise<KeyRecord | undefined> {
    const row = this.stmts.getKey.get(keyId);
    return row ? toRecord(row) : undefined;
  }

  async listKeys(opts: { afterKeyId?: string | undefined; limit: number; includeCreating?: boolean }): Promise<KeyRecord[]> {
    const stmt = opts.includeCreating ? this.stmts.listAllKeys : this.stmts.listKeys;
    return stmt.all(opts.afterKeyId ?? "", opts.limit).map(toRecord);
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

  private migrate(): void {
    const done = this.db.pragma("user_version", { simple: true }) as number;
    for (let i = done; i < MIGRATIONS.length; i++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[i]!);
        this.db.pragma(`user_version = ${i + 1}`);
      })();
    }
  }
}

function toRecord(r: KeyRow): KeyRecord {
  return {
    keyId: r.key_id,
    keyStoreId: r.key_store_id,
    description: r.description,
    keySpec: r.key_spec as KeySpec,
    keyUsage: r.key_usage as KeyUsage,
    origin: r.origin as Origin,
    keyState: r.key_state as KeyState,
    creationDate: new Date(r.creation_date),
    deletionDate: r.deletion_date === null ? undefined : new Date(r.deletion_date),
    currentVersion: r.current_version,
  };
}

