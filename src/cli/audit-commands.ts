import { existsSync, readFileSync } from "node:fs";
import { createPublicKey } from "node:crypto";
import { dirname, join } from "node:path";
import { type Command, Option } from "commander";
import type { ServiceError } from "@grpc/grpc-js";
import { collect } from "./args.js";
import { connect, errorType } from "./client.js";
import type { WatchAuditEventsResponse } from "../gen/p11kms/v1/kms.js";
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
    .command("watch")
    .description("print live audit events (WatchAuditEvents), one JSON line each, until interrupted")
    .addOption(new Option("--event-name <name>", "only these events, e.g. DisableKey (repeatable)").argParser(collect))
    .addOption(new Option("--key-id <id>", "only events of these keys: key id or ARN (repeatable)").argParser(collect))
    .action(async (o: { eventName?: string[]; keyId?: string[] }) => {
      const { endpoint } = program.opts<{ endpoint: string }>();
      const client = connect(endpoint);
      const stream = client.watchAuditEvents({ eventNames: o.eventName ?? [], keyIds: o.keyId ?? [] });
      const stop = () => stream.cancel();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      await new Promise<void>((resolve) => {
        stream.on("data", (m: WatchAuditEventsResponse) => {
          // A slow reader loses events rather than slowing the daemon: say so where it happened.
          if (m.lostEvents > 0) process.stderr.write(`${m.lostEvents} audit event(s) lost here (this watcher was too slow)\n`);
          process.stdout.write(`${m.eventJson}\n`);
        });
        stream.on("error", (err: ServiceError) => {
          if (err.code !== 1 /* CANCELLED: interrupted */) {
            process.stderr.write(`\nAn error occurred (${errorType(err)}) when calling the WatchAuditEvents operation: ${err.details}\n`);
            process.exitCode = 254;
          }
          resolve();
        });
        stream.on("end", () => resolve());
      });
      client.close();
    });
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
            Recoveries: report.recoveries,
          },
          null,
          4,
        )}\n`,
      );
      process.exitCode = !ok ? 1 : complete ? 0 : 2;
    });
}
