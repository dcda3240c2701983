import { readFileSync, statSync } from "node:fs";
import { z } from "zod";

/** One SigV4 credential: who signs with it. */
export interface AccessKey {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** The principal requests signed with this key act as (an ARN-like string). */
  readonly principal: string;
}

const fileSchema = z
  .object({
    accessKeyId: z.string().regex(/^[A-Z0-9]{16,128}$/, "16-128 upper-case letters or digits"),
    secretAccessKey: z.string().min(20).max(128),
    principal: z.string().min(1).max(2048).optional(),
  })
  .strict();

/**
 * Reads access key files (`{"accessKeyId", "secretAccessKey", "principal"?}`, mode 0600). The secret stays
 * in memory only; nothing here logs it.
 */
export function loadAccessKeys(paths: readonly string[], accountId: string): Map<string, AccessKey> {
  const keys = new Map<string, AccessKey>();
  for (const path of paths) {
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st) throw new Error(`access key file ${path} does not exist`);
    if ((st.mode & 0o077) !== 0) throw new Error(`access key file ${path} must not be readable by group or others (chmod 600)`);
    let parsed;
    try {
      parsed = fileSchema.safeParse(JSON.parse(readFileSync(path, "utf8")));
    } catch {
      throw new Error(`access key file ${path} is not valid JSON`);
    }
    if (!parsed.success) {
      throw new Error(`access key file ${path}: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    }
    const k = parsed.data;
    if (keys.has(k.accessKeyId)) throw new Error(`access key ${k.accessKeyId} is configured twice`);
    keys.set(k.accessKeyId, {
      accessKeyId: k.accessKeyId,
      secretAccessKey: k.secretAccessKey,
      principal: k.principal ?? `arn:aws:iam::${accountId}:user/${k.accessKeyId}`,
    });
  }
  return keys;
}
