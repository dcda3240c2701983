import type Database from "better-sqlite3";
import type { GrantConstraints, GrantOperation, GrantRecord } from "../kms/authz/grants.js";
import type { AccessMetadata } from "../kms/ports.js";

interface GrantRow {
  grant_id: string;
  key_id: string;
  name: string | null;
  grantee_principal: string;
  retiring_principal: string | null;
  issuing_account: string;
  operations: string;
  constraints: string | null;
  creation_date: number;
  token_hash: string;
}

function toGrant(r: GrantRow): GrantRecord {
  return {
    grantId: r.grant_id,
    keyId: r.key_id,
    name: r.name ?? undefined,
    granteePrincipal: r.grantee_principal,
    retiringPrincipal: r.retiring_principal ?? undefined,
    issuingAccount: r.issuing_account,
    operations: JSON.parse(r.operations) as GrantOperation[],
    constraints: r.constraints === null ? undefined : (JSON.parse(r.constraints) as GrantConstraints),
    creationDate: new Date(r.creation_date),
    tokenHash: r.token_hash,
  };
}

/** Key policies and grants in SQLite. Limits are checked inside the inserting transaction, so they hold under concurrency. */
export class SqliteAccessStore implements AccessMetadata {
  constructor(protected readonly db: Database.Database) {}

  async getKeyPolicy(keyId: string): Promise<string | undefined> {
    return this.db.prepare<[string], { policy: string }>(`SELECT policy FROM key_policies WHERE key_id = ?`).get(keyId)?.policy;
  }

  async putKeyPolicy(keyId: string, policy: string): Promise<void> {
    this.db
      .prepare(`INSERT INTO key_policies (key_id, policy) VALUES (?, ?) ON CONFLICT (key_id) DO UPDATE SET policy = excluded.policy`)
      .run(keyId, policy);
  }

  async insertGrant(g: GrantRecord, maxPerKey: number, maxPerGrantee: number): Promise<"ok" | "limit"> {
    return this.db.transaction(() => {
      const count = (sql: string, ...args: string[]) => (this.db.prepare(sql).get(...args) as { n: number }).n;
      if (count(`SELECT count(*) AS n FROM grants WHERE key_id = ?`, g.keyId) >= maxPerKey) return "limit" as const;
      if (count(`SELECT count(*) AS n FROM grants WHERE key_id = ? AND grantee_principal = ?`, g.keyId, g.granteePrincipal) >= maxPerGrantee) {
        return "limit" as const;
      }
      this.db
        .prepare(
          `INSERT INTO grants (grant_id, key_id, name, grantee_principal, retiring_principal, issuing_account, operations, constraints, creation_date, token_hash)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          g.grantId,
          g.keyId,
          g.name ?? null,
          g.granteePrincipal,
          g.retiringPrincipal ?? null,
          g.issuingAccount,
          JSON.stringify(g.operations),
          g.constraints ? JSON.stringify(g.constraints) : null,
          g.creationDate.getTime(),
          g.tokenHash,
        );
      return "ok" as const;
    })();
  }

  async getGrant(grantId: string): Promise<GrantRecord | undefined> {
    const r = this.db.prepare<[string], GrantRow>(`SELECT * FROM grants WHERE grant_id = ?`).get(grantId);
    return r ? toGrant(r) : undefined;
  }

  async deleteGrant(grantId: string): Promise<boolean> {
    return this.db.prepare(`DELETE FROM grants WHERE grant_id = ?`).run(grantId).changes === 1;
  }

  async grantsFor(keyId: string, granteePrincipal: string): Promise<GrantRecord[]> {
    return this.db
      .prepare<[string, string], GrantRow>(`SELECT * FROM grants WHERE key_id = ? AND grantee_principal = ?`)
      .all(keyId, granteePrincipal)
      .map(toGrant);
  }

  async listGrants(o: { keyId: string; grantId?: string | undefined; granteePrincipal?: string | undefined; afterGrantId?: string | undefined; limit: number }): Promise<GrantRecord[]> {
    return this.db
      .prepare<[{ keyId: string; after: string; grantId: string | null; grantee: string | null; limit: number }], GrantRow>(
        `SELECT * FROM grants WHERE key_id = @keyId AND grant_id > @after AND (@grantId IS NULL OR grant_id = @grantId)
           AND (@grantee IS NULL OR grantee_principal = @grantee)
         ORDER BY grant_id LIMIT @limit`,
      )
      .all({ keyId: o.keyId, after: o.afterGrantId ?? "", grantId: o.grantId ?? null, grantee: o.granteePrincipal ?? null, limit: o.limit })
      .map(toGrant);
  }

  async listRetirableGrants(o: { retiringPrincipal: string; afterGrantId?: string | undefined; limit: number }): Promise<GrantRecord[]> {
    return this.db
      .prepare<[string, string, number], GrantRow>(
        `SELECT g.* FROM grants g JOIN keys k ON k.key_id = g.key_id
         WHERE g.retiring_principal = ? AND g.grant_id > ? AND k.deleted_at IS NULL ORDER BY g.grant_id LIMIT ?`,
      )
      .all(o.retiringPrincipal, o.afterGrantId ?? "", o.limit)
      .map(toGrant);
  }
}
