import { randomBytes, randomInt } from "node:crypto";
import { writeFileSync } from "node:fs";

const ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/**
 * Writes a new access key file `{"accessKeyId", "secretAccessKey"[, "principal"]}` with mode 0600, failing if
 * the file exists (so a key in use is never replaced by accident). Ids look like AWS ones (20 characters,
 * upper case) so tools that check the shape accept them; the secret is 40 base64 characters (240 bits).
 */
export function createAccessKeyFile(path: string, principal?: string): string {
  const accessKeyId = `AKIA${Array.from({ length: 16 }, () => ID_ALPHABET[randomInt(ID_ALPHABET.length)]).join("")}`;
  const secretAccessKey = randomBytes(30).toString("base64");
  const body = { accessKeyId, secretAccessKey, ...(principal ? { principal } : {}) };
  writeFileSync(path, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600, flag: "wx" });
  return accessKeyId;
}
