import { existsSync, readFileSync } from "node:fs";
import { createPublicKey } from "node:crypto";
import { dirname, join } from "node:path";
import type { Command } from "commander";
import { fingerprint } from "../audit/chain.js";
import { AUDIT_PUBLIC_KEY_FILE } from "../audit/public-key-file.js";
import { inChainOrder, verifyLog } from "../audit/verify.js";

/**
 * `p11kms audit verify FILE...`: offline verification of audit log files (docs/audit.md). Exit codes:
 * 0 intact and fully signed, ending with a shutdown digest; 1 tampering detected (modified, deleted,
 * inserted or reordered records, bad signatures); 2 intact so far but not fully vouched for (records after
 * the last signed digest, no clean end — a live log, a crash, or a truncated tail); 255 unreadable input.
 */
export function registerAuditCommands(program: Command): void {
  const audit = program.command("audit").description("audit log tools");
  audit
    .command("verify")
    .description("check audit log files: hash chain, digest signatures, completeness (files in any order: sorted by sequence number)")
    .argument("<files...>", "audit log files, e.g. var/audit/audit.jsonl*")
    .option("--public-key <pem>", `the audit signing public key (default: ${AUDIT_PUBLIC_KEY_FILE} next to the files); pin a copy kept elsewhere`)
    .action((paths: string[], o: { publicKey?: string }) => {
      const keyPath = o.publicKey ?? join(dirname(paths[0]!), AUDIT_PUBLIC_KEY_FILE);
      if (!existsSync(keyPath)) throw new Error(`no public key at ${keyPath}: pass --public-key`);
      const spki = createPublicKey(readFileSync(keyPath)).export({ format: "der", type: "spki" });
      const files = inChainOrder(paths.map((p) => ({ name: p, text: readFileSync(p, "utf8") })));
      const report = verifyLog(files, spki);
      const ok = report.problems.length === 0;
      const complete = ok && report.warnings.length === 0;
      process.stdout.write(
        `${JSON.stringify(
          {
            Result: !ok ? "TAMPERED" : complete ? "VALID" : "INCOMPLETE",
            PublicKeyFingerprint: fingerprint(spki),
            Files: files.map((f) => f.name),
            Records: report.records,
            Events: report.events,
            Digests: report.digests,
            FirstSeq: report.firstSeq,
            LastSeq: report.lastSeq,
            LastSignedSeq: report.lastSignedSeq,
            Problems: report.problems,
            Warnings: report.warnings,
          },
          null,
          4,
        )}\n`,
      );
      process.exitCode = !ok ? 1 : complete ? 0 : 2;
    });
}
