import { createPublicKey } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The audit signing key's public half, written next to the log so `audit verify` works offline. */
export const AUDIT_PUBLIC_KEY_FILE = "audit-signing-key.pem";

/** Writes (or replaces, when the token's key changed) the PEM file in `dir`; returns its path. */
export function writePublicKeyFile(dir: string, spki: Buffer): string {
  const path = join(dir, AUDIT_PUBLIC_KEY_FILE);
  const pem = createPublicKey({ key: spki, format: "der", type: "spki" }).export({ format: "pem", type: "spki" }).toString();
  if (existsSync(path) && readFileSync(path, "utf8") === pem) return path;
  writeFileSync(`${path}.tmp`, pem, { mode: 0o644 });
  renameSync(`${path}.tmp`, path);
  return path;
}
