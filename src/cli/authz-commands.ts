import { readFileSync } from "node:fs";
import { type Command, Option } from "commander";
import { createGrantResponse, getKeyPolicyResponse, listGrantsResponse, listKeyPoliciesResponse } from "../api/aws/responses/authz.js";
import { parseIntArg } from "./args.js";
import type { CommandKit } from "./asymmetric-commands.js";
import { call } from "./client.js";
import { CLI_STYLE } from "./output.js";

/** A policy as the AWS CLI takes it: the JSON text, or file://<path>. */
function parsePolicy(value: string): string {
  return value.startsWith("file://") ? readFileSync(value.slice(7), "utf8") : value;
}

/** Constraints as JSON: {"EncryptionContextSubset": {...}} and/or {"EncryptionContextEquals": {...}}. */
function parseConstraints(value: string): { EncryptionContextSubset?: Record<string, string>; EncryptionContextEquals?: Record<string, string> } {
  const text = value.startsWith("file://") ? readFileSync(value.slice(7), "utf8") : value;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error('--constraints must be JSON, e.g. {"EncryptionContextSubset":{"Department":"IT"}}');
  }
  if (typeof v !== "object" || v === null || Array.isArray(v) || Object.keys(v).some((k) => k !== "EncryptionContextSubset" && k !== "EncryptionContextEquals")) {
    throw new Error("--constraints takes EncryptionContextSubset and/or EncryptionContextEquals");
  }
  return v as ReturnType<typeof parseConstraints>;
}

const listOptions = (c: Command) => c.addOption(new Option("--limit <n>").argParser(parseIntArg)).option("--marker <marker>");

/** Key policy and grant commands with the AWS CLI's names and options, and the AWS facade's response shapes (src/api/aws/responses/authz.ts). */
export function registerAuthzCommands({ kms, grantOption }: Pick<CommandKit, "kms" | "grantOption">): void {
  kms<{ keyId: string; policyName?: string; policy: string; bypassPolicyLockoutSafetyCheck?: boolean }>(
    "put-key-policy",
    "replace a key's policy (JSON text or file://policy.json)",
    (c) =>
      c
        .requiredOption("--key-id <id>", "key id or key ARN")
        .option("--policy-name <name>", 'always "default"')
        .addOption(new Option("--policy <policy>", "JSON text or file://<path>").argParser(parsePolicy).makeOptionMandatory())
        .option("--bypass-policy-lockout-safety-check", "apply a policy that would lock you out of PutKeyPolicy"),
    async (c, o, t) =>
      void (await call(c, c.putKeyPolicy, { keyId: o.keyId, policyName: o.policyName ?? "", policy: o.policy, bypassPolicyLockoutSafetyCheck: !!o.bypassPolicyLockoutSafetyCheck }, t)),
  );
  kms<{ keyId: string; policyName?: string }>(
    "get-key-policy",
    "show a key's policy",
    (c) => c.requiredOption("--key-id <id>", "key id or key ARN").option("--policy-name <name>", 'always "default"'),
    async (c, o, t) => getKeyPolicyResponse(await call(c, c.getKeyPolicy, { keyId: o.keyId, policyName: o.policyName ?? "" }, t)),
  );
  kms<{ keyId: string; limit?: number; marker?: string }>(
    "list-key-policies",
    'list a key\'s policy names (always ["default"])',
    (c) => listOptions(c.requiredOption("--key-id <id>", "key id or key ARN")),
    async (c, o, t) => listKeyPoliciesResponse(await call(c, c.listKeyPolicies, { keyId: o.keyId, limit: o.limit, marker: o.marker ?? "" }, t)),
  );

  interface CreateGrantOpts {
    keyId: string;
    granteePrincipal: string;
    retiringPrincipal?: string;
    operations: string[];
    constraints?: ReturnType<typeof parseConstraints>;
    grantTokens?: string[];
    name?: string;
    dryRun?: boolean;
  }
  kms<CreateGrantOpts>(
    "create-grant",
    "allow a principal operations on a key",
    (c) =>
      c
        .requiredOption("--key-id <id>", "key id or key ARN")
        .requiredOption("--grantee-principal <arn>")
        .option("--retiring-principal <arn>")
        .requiredOption("--operations <operation...>", "Encrypt Decrypt GenerateDataKey ... (space separated)")
        .addOption(new Option("--constraints <json>", '{"EncryptionContextSubset":{...}} or {"EncryptionContextEquals":{...}}').argParser(parseConstraints))
        .addOption(grantOption())
        .option("--name <name>")
        .option("--dry-run"),
    async (c, o, t) => {
      const r = await call(
        c,
        c.createGrant,
        {
          keyId: o.keyId,
          granteePrincipal: o.granteePrincipal,
          retiringPrincipal: o.retiringPrincipal ?? "",
          operations: o.operations.flatMap((x) => x.split(",")).filter((x) => x !== ""),
          constraints: o.constraints && {
            encryptionContextSubset: new Map(Object.entries(o.constraints.EncryptionContextSubset ?? {})),
            encryptionContextEquals: new Map(Object.entries(o.constraints.EncryptionContextEquals ?? {})),
          },
          grantTokens: o.grantTokens ?? [],
          name: o.name ?? "",
          dryRun: !!o.dryRun,
        },
        t,
      );
      return createGrantResponse(r);
    },
  );
  kms<{ keyId: string; limit?: number; marker?: string; grantId?: string; granteePrincipal?: string }>(
    "list-grants",
    "list a key's grants (one page)",
    (c) => listOptions(c.requiredOption("--key-id <id>", "key id or key ARN")).option("--grant-id <id>").option("--grantee-principal <arn>"),
    async (c, o, t) => {
      const r = await call(c, c.listGrants, { keyId: o.keyId, limit: o.limit, marker: o.marker ?? "", grantId: o.grantId ?? "", granteePrincipal: o.granteePrincipal ?? "" }, t);
      return listGrantsResponse(r, CLI_STYLE);
    },
  );
  kms<{ retiringPrincipal: string; limit?: number; marker?: string }>(
    "list-retirable-grants",
    "list the grants a principal may retire (one page)",
    (c) => listOptions(c.requiredOption("--retiring-principal <arn>")),
    async (c, o, t) => listGrantsResponse(await call(c, c.listRetirableGrants, { retiringPrincipal: o.retiringPrincipal, limit: o.limit, marker: o.marker ?? "" }, t), CLI_STYLE),
  );
  kms<{ grantToken?: string; keyId?: string; grantId?: string; dryRun?: boolean }>(
    "retire-grant",
    "retire a grant (by --grant-token, or --key-id and --grant-id)",
    (c) => c.option("--grant-token <token>").option("--key-id <id>").option("--grant-id <id>").option("--dry-run"),
    async (c, o, t) => void (await call(c, c.retireGrant, { grantToken: o.grantToken ?? "", keyId: o.keyId ?? "", grantId: o.grantId ?? "", dryRun: !!o.dryRun }, t)),
  );
  kms<{ keyId: string; grantId: string; dryRun?: boolean }>(
    "revoke-grant",
    "revoke a grant",
    (c) => c.requiredOption("--key-id <id>", "key id or key ARN").requiredOption("--grant-id <id>").option("--dry-run"),
    async (c, o, t) => void (await call(c, c.revokeGrant, { keyId: o.keyId, grantId: o.grantId, dryRun: !!o.dryRun }, t)),
  );
}
