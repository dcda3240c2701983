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
];
