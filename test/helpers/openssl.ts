import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * The openssl CLI as an independent implementation: verifies p11kms signatures and produces RSA
 * ciphertexts from the DER public key that GetPublicKey returns.
 */
export function withFiles<T>(files: Record<string, Buffer>, fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "p11kms-openssl-"));
  try {
    for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs openssl; returns its exit status and output instead of throwing (a failed verify exits 1). */
export function openssl(args: string[], cwd: string): { status: number; out: string } {
  try {
    return { status: 0, out: execFileSync("openssl", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }) };
  } catch (err) {
    const e = err as { status?: number; stdout?: string; stderr?: string };
    return { status: e.status ?? -1, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

/** `openssl` verification of a signature made with an AWS signing algorithm; true when it verifies. */
export function opensslVerify(spki: Buffer, algorithm: string, message: Buffer, signature: Buffer): boolean {
  return withFiles({ "pub.der": spki, msg: message, sig: signature }, (dir) => {
    if (algorithm === "ED25519_SHA_512") {
      return openssl(["pkeyutl", "-verify", "-pubin", "-inkey", "pub.der", "-keyform", "DER", "-rawin", "-in", "msg", "-sigfile", "sig"], dir).status === 0;
    }
    const bits = /_SHA_(256|384|512)$/.exec(algorithm)![1]!;
    const args = ["dgst", `-sha${bits}`, "-verify", "pub.der", "-keyform", "DER", "-signature", "sig"];
    if (algorithm.startsWith("RSASSA_PSS_")) args.push("-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest");
    return openssl([...args, "msg"], dir).status === 0;
  });
}
