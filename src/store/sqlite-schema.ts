/**
 * Schema migrations for the embedded store, applied in order; PRAGMA user_version records how many ran.
 * Append new steps, never edit old ones: databases in the field have already run them.
 */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE keys (
     key_id         TEXT PRIMARY KEY,
     key_store_id   TEXT NOT NULL,
     description    TEXT NOT NULL,
     key_spec       TEXT NOT NULL,
     key_usage      TEXT NOT NULL,
     origin         TEXT NOT NULL,
     key_state      TEXT NOT NULL,
     creation_date  INTEGER NOT NULL,
     deletion_date  INTEGER,
     current_version INTEGER NOT NULL
   ) STRICT;
   CREATE TABLE key_versions (
     key_id     TEXT NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,
     version    INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     PRIMARY KEY (key_id, version)
   ) STRICT;
   CREATE TABLE tags (
     key_id    TEXT NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,
     tag_key   TEXT NOT NULL,
     tag_value TEXT NOT NULL,
     PRIMARY KEY (key_id, tag_key)
   ) STRICT;`,
  // 2: key lifecycle — tombstones, aliases, rotation schedules, versions' origin, key store state.
  `ALTER TABLE keys ADD COLUMN deleted_at INTEGER;
   ALTER TABLE key_versions ADD COLUMN rotation_type TEXT;
   CREATE INDEX keys_deletion_due ON keys (deletion_date) WHERE key_state = 'PendingDeletion' AND deleted_at IS NULL;
   CREATE TABLE aliases (
     alias_name        TEXT PRIMARY KEY,
     target_key_id     TEXT NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,
     creation_date     INTEGER NOT NULL,
     last_updated_date INTEGER NOT NULL
   ) STRICT;
   CREATE INDEX aliases_by_key ON aliases (target_key_id, alias_name);
   CREATE TABLE key_rotation (
     key_id             TEXT PRIMARY KEY REFERENCES keys(key_id) ON DELETE CASCADE,
     period_days        INTEGER NOT NULL,
     next_rotation_date INTEGER NOT NULL
   ) STRICT;
   CREATE INDEX key_rotation_due ON key_rotation (next_rotation_date);
   CREATE TABLE key_stores (
     key_store_id  TEXT PRIMARY KEY,
     creation_date INTEGER NOT NULL,
     connect       INTEGER NOT NULL
   ) STRICT;`,
  // 3: BYOK — the check value of a key's imported material (kept across deletion) and its expiry.
  `CREATE TABLE key_material (
     key_id           TEXT PRIMARY KEY REFERENCES keys(key_id) ON DELETE CASCADE,
     key_check_value  BLOB NOT NULL,
     expiration_model TEXT NOT NULL,
     valid_to         INTEGER
   ) STRICT;
   CREATE INDEX key_material_expiry ON key_material (valid_to) WHERE valid_to IS NOT NULL;`,
  // 4: authorization — one policy document per key, and grants (docs/authorization.md).
  `CREATE TABLE key_policies (
     key_id TEXT PRIMARY KEY REFERENCES keys(key_id) ON DELETE CASCADE,
     policy TEXT NOT NULL
   ) STRICT;
   CREATE TABLE grants (
     grant_id           TEXT PRIMARY KEY,
     key_id             TEXT NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,
     name               TEXT,
     grantee_principal  TEXT NOT NULL,
     retiring_principal TEXT,
     issuing_account    TEXT NOT NULL,
     operations         TEXT NOT NULL,
     constraints        TEXT,
     creation_date      INTEGER NOT NULL,
     token_hash         TEXT NOT NULL
   ) STRICT;
   CREATE INDEX grants_by_key ON grants (key_id, grant_id);
   CREATE INDEX grants_by_grantee ON grants (key_id, grantee_principal);
   CREATE INDEX grants_by_retiring ON grants (retiring_principal, grant_id) WHERE retiring_principal IS NOT NULL;`,
];
