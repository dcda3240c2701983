import { readFileSync, statSync } from "node:fs";
import type { Pkcs11Uri } from "./pkcs11-uri.js";
import { resolvePath } from "./load.js";

/**
 * Reads the token PIN from its source. A PIN file readable by group or others is refused: the PIN is
 * the only thing between a copied token directory and its keys.
 */
export function readPin(source: Pkcs11Uri["pinSource"], baseDir: string, env = process.env): string {
  if (source.kind === "env") {
    const v = env[source.name];
    if (!v) throw new Error(`PIN environment variable ${source.name} is not set`);
    return v;
  }
  const path = resolvePath(baseDir, source.path);
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) throw new Error(`PIN file ${path} does not exist`);
  if ((st.mode & 0o077) !== 0) throw new Error(`PIN file ${path} must not be readable by group or others (chmod 600)`);
  const pin = readFileSync(path, "utf8").replace(/\r?\n$/, "");
  if (pin === "") throw new Error(`PIN file ${path} is empty`);
  return pin;
}
