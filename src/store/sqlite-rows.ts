import type { KeyRecord, KeySpec, KeyState, KeyUsage, Origin } from "../kms/types.js";

/** A row of the `keys` table. */
export interface KeyRow {
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
  deleted_at: number | null;
}

export function toRecord(r: KeyRow): KeyRecord {
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
    deletedAt: r.deleted_at === null ? undefined : new Date(r.deleted_at),
  };
}
