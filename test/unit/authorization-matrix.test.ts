import { describe, expect, it } from "vitest";
import { conditionKeys, decide } from "../../src/kms/authz/authorizer.js";
import type { GrantConstraints, GrantOperation, GrantRecord } from "../../src/kms/authz/grants.js";
import { defaultPolicy, parsePolicy } from "../../src/kms/authz/policy.js";
import type { Caller } from "../../src/kms/caller.js";
import type { EncryptionContext, KeyRecord } from "../../src/kms/types.js";

/**
 * The authorization matrix: principals × operations × policies/grants/conditions, each cell's expected
 * outcome written down per scenario (a small hand-written rule, not the evaluator), the evaluator run as the
 * pure function it is. Every scenario must show 0 unexpected allows and 0 unexpected denies.
 */

const ACCOUNT = "111122223333";
const P = {
  admin: `arn:aws:iam::${ACCOUNT}:root`,
  alice: `arn:aws:iam::${ACCOUNT}:user/alice`,
  bob: `arn:aws:iam::${ACCOUNT}:user/bob`,
  app: `arn:aws:iam::${ACCOUNT}:role/app`,
  eve: "arn:aws:iam::444455556666:user/eve",
} as const;
type Who = keyof typeof P;
const WHO = Object.keys(P) as Who[];

/** Every operation that is authorized against a key policy. */
const OPS = [
  "CancelKeyDeletion", "CreateAlias", "CreateGrant", "Decrypt", "DeleteAlias", "DeleteImportedKeyMaterial", "DescribeKey",
  "DisableKey", "DisableKeyRotation", "EnableKey", "EnableKeyRotation", "Encrypt", "GenerateDataKey", "GenerateDataKeyPair",
  "GenerateDataKeyPairWithoutPlaintext", "GenerateDataKeyWithoutPlaintext", "GenerateMac", "GetKeyPolicy", "GetKeyRotationStatus",
  "GetParametersForImport", "GetPublicKey", "ImportKeyMaterial", "ListGrants", "ListKeyPolicies", "ListKeyRotations",
  "ListResourceTags", "PutKeyPolicy", "ReEncryptFrom", "ReEncryptTo", "RetireGrant", "RevokeGrant", "RotateKeyOnDemand",
  "ScheduleKeyDeletion", "Sign", "TagResource", "UntagResource", "UpdateAlias", "UpdateKeyDescription", "Verify", "VerifyMac",
] as const;
type Op = (typeof OPS)[number];

const KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab";
const KEY_ARN = `arn:aws:kms:us-east-1:${ACCOUNT}:key/${KEY_ID}`;
const KEY: KeyRecord = {
  keyId: KEY_ID,
  keyStoreId: "default",
  description: "",
  keySpec: "SYMMETRIC_DEFAULT",
  keyUsage: "ENCRYPT_DECRYPT",
  origin: "AWS_KMS",
  keyState: "Enabled",
  creationDate: new Date(0),
  currentVersion: 1,
};

interface Request {
  readonly context?: EncryptionContext;
  readonly alias?: string;
  readonly signing?: string;
}

interface Scenario {
  readonly name: string;
  readonly policy: unknown;
  readonly grants?: readonly Omit<GrantRecord, "keyId" | "grantId" | "issuingAccount" | "creationDate" | "tokenHash" | "name" | "retiringPrincipal">[];
  readonly requests?: readonly Request[];
  /** The expected decision of each cell, written from the scenario's intent. */
  readonly allows: (who: Who, op: Op, req: Request) => boolean;
}

const stmt = (principal: unknown, action: unknown, extra: Record<string, unknown> = {}) => ({ Effect: "Allow", Principal: principal, Action: action, Resource: "*", ...extra });
const adminAll = stmt({ AWS: P.admin }, "kms:*");
const doc = (...Statement: unknown[]) => ({ Version: "2012-10-17", Statement });
const grant = (who: Who, operations: GrantOperation[], constraints?: GrantConstraints) => ({ granteePrincipal: P[who], operations, constraints });

const CRYPTO_SYMMETRIC: readonly Op[] = ["Encrypt", "Decrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo"];
const READ_ONLY: readonly Op[] = OPS.filter((o) => /^(Describe|Get|List)/.test(o));
const CTX = {
  none: {},
  it: { dept: "it" },
  IT: { dept: "IT" },
  hr: { dept: "hr" },
  itProject: { dept: "it", project: "x" },
  itOther: { dept: "it", other: "y" },
  mixedCaseKey: { Dept: "it" },
  app: { appName: "web" },
  prod: { env: "prod" },
  dev: { env: "dev" },
} satisfies Record<string, EncryptionContext>;
const ALL_CTX: Request[] = Object.values(CTX).map((context) => ({ context }));

const SCENARIOS: Scenario[] = [
  {
    name: "default policy: the administrator only",
    policy: JSON.parse(defaultPolicy(P.admin)),
    allows: (w) => w === "admin",
  },
  {
    name: "a user allowed Encrypt, Decrypt and kms:GenerateDataKey* (wildcard)",
    policy: doc(adminAll, stmt({ AWS: P.alice }, ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"])),
    allows: (w, op) =>
      w === "admin" ||
      (w === "alice" && ["Encrypt", "Decrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext"].includes(op)),
  },
  {
    name: "actions are case-insensitive, ? matches one character",
    policy: doc(adminAll, stmt({ AWS: [P.bob] }, ["KMS:encrypt", "kms:Si?n"])),
    allows: (w, op) => w === "admin" || (w === "bob" && (op === "Encrypt" || op === "Sign")),
  },
  {
    name: "explicit Deny wins over an Allow to everyone",
    policy: doc(adminAll, stmt("*", ["kms:Describe*", "kms:Decrypt"]), { Effect: "Deny", Principal: { AWS: P.alice }, Action: "kms:Decrypt", Resource: "*" }),
    allows: (w, op) => w === "admin" || op === "DescribeKey" || (op === "Decrypt" && w !== "alice"),
  },
  {
    name: "Deny everything but reads to everyone but the administrator (NotAction + StringNotEquals aws:PrincipalArn)",
    policy: doc(stmt("*", "kms:*"), {
      Effect: "Deny",
      Principal: "*",
      NotAction: ["kms:Describe*", "kms:Get*", "kms:List*"],
      Resource: "*",
      Condition: { StringNotEquals: { "aws:PrincipalArn": P.admin } },
    }),
    allows: (w, op) => w === "admin" || READ_ONLY.includes(op),
  },
  {
    name: "Allow with NotAction: everything except deletion and policy changes",
    policy: doc(adminAll, { Effect: "Allow", Principal: { AWS: P.app }, NotAction: ["kms:ScheduleKeyDeletion", "kms:PutKeyPolicy"], Resource: "*" }),
    allows: (w, op) => w === "admin" || (w === "app" && op !== "ScheduleKeyDeletion" && op !== "PutKeyPolicy"),
  },
  {
    name: "StringEquals on kms:EncryptionContext:dept (key name case-insensitive, value case-sensitive)",
    policy: doc(adminAll, stmt({ AWS: P.alice }, ["kms:Encrypt", "kms:Decrypt"], { Condition: { StringEquals: { "kms:EncryptionContext:dept": "it" } } })),
    requests: ALL_CTX,
    allows: (w, op, r) => w === "admin" || (w === "alice" && (op === "Encrypt" || op === "Decrypt") && (r.context?.dept === "it" || r.context?.Dept === "it")),
  },
  {
    name: "StringEqualsIgnoreCase on the context value",
    policy: doc(adminAll, stmt({ AWS: P.alice }, "kms:Decrypt", { Condition: { StringEqualsIgnoreCase: { "kms:EncryptionContext:dept": "it" } } })),
    requests: ALL_CTX,
    allows: (w, op, r) => w === "admin" || (w === "alice" && op === "Decrypt" && (r.context?.dept ?? r.context?.Dept)?.toLowerCase() === "it"),
  },
  {
    name: "ForAllValues:StringEquals on kms:EncryptionContextKeys (an empty context passes, as in IAM)",
    policy: doc(adminAll, stmt({ AWS: P.bob }, "kms:Encrypt", { Condition: { "ForAllValues:StringEquals": { "kms:EncryptionContextKeys": ["dept", "project"] } } })),
    requests: ALL_CTX,
    allows: (w, op, r) => w === "admin" || (w === "bob" && op === "Encrypt" && Object.keys(r.context ?? {}).every((k) => k === "dept" || k === "project")),
  },
  {
    name: "ForAllValues plus Null=false: a non-empty context of allowed keys only",
    policy: doc(
      adminAll,
      stmt({ AWS: P.bob }, "kms:Encrypt", { Condition: { "ForAllValues:StringEquals": { "kms:EncryptionContextKeys": ["dept", "project"] }, Null: { "kms:EncryptionContextKeys": "false" } } }),
    ),
    requests: ALL_CTX,
    allows: (w, op, r) => {
      const keys = Object.keys(r.context ?? {});
      return w === "admin" || (w === "bob" && op === "Encrypt" && keys.length > 0 && keys.every((k) => k === "dept" || k === "project"));
    },
  },
  {
    name: "ForAnyValue:StringLike on kms:EncryptionContextKeys",
    policy: doc(adminAll, stmt({ AWS: P.app }, ["kms:Encrypt", "kms:GenerateDataKey"], { Condition: { "ForAnyValue:StringLike": { "kms:EncryptionContextKeys": "app*" } } })),
    requests: ALL_CTX,
    allows: (w, op, r) => w === "admin" || (w === "app" && (op === "Encrypt" || op === "GenerateDataKey") && Object.keys(r.context ?? {}).some((k) => k.startsWith("app"))),
  },
  {
    name: "StringNotEquals: an absent key satisfies it, a listed value does not",
    policy: doc(adminAll, stmt("*", "kms:Encrypt", { Condition: { StringNotEquals: { "kms:EncryptionContext:env": "prod" } } })),
    requests: ALL_CTX,
    allows: (w, op, r) => w === "admin" || (op === "Encrypt" && r.context?.env !== "prod"),
  },
  {
    name: "StringEqualsIfExists: absent passes, present must match",
    policy: doc(adminAll, stmt({ AWS: [P.alice, P.bob] }, "kms:Decrypt", { Condition: { StringEqualsIfExists: { "kms:EncryptionContext:env": "dev" } } })),
    requests: ALL_CTX,
    allows: (w, op, r) => w === "admin" || ((w === "alice" || w === "bob") && op === "Decrypt" && (r.context?.env === undefined || r.context.env === "dev")),
  },
  {
    name: "Principal * limited to the account by kms:CallerAccount",
    policy: doc(adminAll, stmt("*", ["kms:Encrypt", "kms:DescribeKey"], { Condition: { StringEquals: { "kms:CallerAccount": ACCOUNT } } })),
    allows: (w, op) => w === "admin" || (w !== "eve" && (op === "Encrypt" || op === "DescribeKey")),
  },
  {
    name: "ArnLike on aws:PrincipalArn (users of the account, not roles)",
    policy: doc(adminAll, stmt({ AWS: "*" }, "kms:Sign", { Condition: { ArnLike: { "aws:PrincipalArn": `arn:aws:iam::${ACCOUNT}:user/*` } } })),
    allows: (w, op) => w === "admin" || ((w === "alice" || w === "bob") && op === "Sign"),
  },
  {
    name: "kms:RequestAlias: only when the key is named by that alias",
    policy: doc(adminAll, stmt({ AWS: P.app }, ["kms:Encrypt", "kms:Decrypt"], { Condition: { StringEquals: { "kms:RequestAlias": "alias/web" } } })),
    requests: [{}, { alias: "alias/web" }, { alias: "alias/other" }],
    allows: (w, op, r) => w === "admin" || (w === "app" && (op === "Encrypt" || op === "Decrypt") && r.alias === "alias/web"),
  },
  {
    name: "kms:SigningAlgorithm limits Sign/Verify to one algorithm",
    policy: doc(adminAll, stmt({ AWS: [P.alice, P.eve] }, ["kms:Sign", "kms:Verify"], { Condition: { StringEquals: { "kms:SigningAlgorithm": "ECDSA_SHA_256" } } })),
    requests: [{}, { signing: "ECDSA_SHA_256" }, { signing: "ECDSA_SHA_384" }],
    allows: (w, op, r) => w === "admin" || ((w === "alice" || w === "eve") && (op === "Sign" || op === "Verify") && r.signing === "ECDSA_SHA_256"),
  },
  {
    name: "Bool kms:GrantIsForAWSResource true never holds here",
    policy: doc(adminAll, stmt({ AWS: P.alice }, ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"], { Condition: { Bool: { "kms:GrantIsForAWSResource": true } } })),
    allows: (w) => w === "admin",
  },
  {
    name: "a 12-digit account id as Principal is that account's root only",
    policy: doc(stmt({ AWS: ACCOUNT }, "kms:*")),
    allows: (w) => w === "admin",
  },
  {
    name: "Resource must match the key ARN",
    policy: doc(adminAll, stmt({ AWS: P.bob }, "kms:*", { Resource: "arn:aws:kms:us-east-1:111122223333:key/other" }), stmt({ AWS: P.alice }, "kms:DescribeKey", { Resource: "arn:aws:kms:*:111122223333:key/*" })),
    allows: (w, op) => w === "admin" || (w === "alice" && op === "DescribeKey"),
  },
  {
    name: "grants: operations of the grant only, to the grantee only",
    policy: JSON.parse(defaultPolicy(P.admin)),
    grants: [grant("alice", ["Encrypt", "Decrypt", "DescribeKey"]), grant("bob", ["Sign", "Verify", "GetPublicKey"])],
    allows: (w, op) => w === "admin" || (w === "alice" && ["Encrypt", "Decrypt", "DescribeKey"].includes(op)) || (w === "bob" && ["Sign", "Verify", "GetPublicKey"].includes(op)),
  },
  {
    name: "grant with EncryptionContextSubset (DescribeKey and RetireGrant unconstrained)",
    policy: JSON.parse(defaultPolicy(P.admin)),
    grants: [grant("app", ["Encrypt", "Decrypt", "GenerateDataKey", "ReEncryptFrom", "DescribeKey", "RetireGrant"], { encryptionContextSubset: { dept: "it" } })],
    requests: ALL_CTX,
    allows: (w, op, r) =>
      w === "admin" ||
      (w === "app" && (op === "DescribeKey" || op === "RetireGrant" || (["Encrypt", "Decrypt", "GenerateDataKey", "ReEncryptFrom"].includes(op) && r.context?.dept === "it"))),
  },
  {
    name: "grant with EncryptionContextEquals (exactly that context)",
    policy: JSON.parse(defaultPolicy(P.admin)),
    grants: [grant("bob", CRYPTO_SYMMETRIC as GrantOperation[], { encryptionContextEquals: { dept: "it", project: "x" } })],
    requests: ALL_CTX,
    allows: (w, op, r) => w === "admin" || (w === "bob" && CRYPTO_SYMMETRIC.includes(op) && JSON.stringify(r.context) === JSON.stringify(CTX.itProject)),
  },
  {
    name: "an explicit Deny in the policy overrides a grant",
    policy: doc(adminAll, { Effect: "Deny", Principal: { AWS: P.alice }, Action: "kms:Decrypt", Resource: "*" }),
    grants: [grant("alice", ["Encrypt", "Decrypt"])],
    allows: (w, op) => w === "admin" || (w === "alice" && op === "Encrypt"),
  },
  {
    name: "policy Allow and grant together: the union",
    policy: doc(adminAll, stmt({ AWS: P.alice }, "kms:DescribeKey")),
    grants: [grant("alice", ["GenerateDataKeyWithoutPlaintext"]), grant("eve", ["Decrypt"])],
    allows: (w, op) => w === "admin" || (w === "alice" && (op === "DescribeKey" || op === "GenerateDataKeyWithoutPlaintext")) || (w === "eve" && op === "Decrypt"),
  },
  {
    name: "kms:ViaService-style keys that are never present deny an Allow that needs them",
    policy: doc(adminAll, stmt({ AWS: P.bob }, "kms:Encrypt", { Condition: { StringEquals: { "kms:ViaService": "s3.us-east-1.amazonaws.com" } } })),
    allows: (w) => w === "admin",
  },
];

function caller(who: Who): Caller {
  return { principal: P[who], authMethod: "sigv4", requestId: "r" };
}

function run(s: Scenario): { cases: number; unexpectedAllows: string[]; unexpectedDenies: string[] } {
  const policy = parsePolicy(JSON.stringify(s.policy));
  const grants: GrantRecord[] = (s.grants ?? []).map((g, i) => ({
    ...g,
    keyId: KEY_ID,
    grantId: String(i).padStart(64, "0"),
    name: undefined,
    retiringPrincipal: undefined,
    issuingAccount: `arn:aws:iam::${ACCOUNT}:root`,
    creationDate: new Date(0),
    tokenHash: "00",
  }));
  const unexpectedAllows: string[] = [];
  const unexpectedDenies: string[] = [];
  let cases = 0;
  for (const req of s.requests ?? [{}]) {
    for (const who of WHO) {
      for (const op of OPS) {
        cases++;
        const c = caller(who);
        const algorithm = req.signing ? { kind: "SigningAlgorithm" as const, value: req.signing } : undefined;
        const keys = conditionKeys(c, KEY, { encryptionContext: req.context, requestAlias: req.alias, algorithm });
        const got = decide(policy, grants, { principal: c.principal, action: `kms:${op}`, resource: KEY_ARN, conditionKeys: keys }, op, req.context).decision === "Allow";
        const want = s.allows(who, op, req);
        const cell = `${who} ${op} ${JSON.stringify(req)}`;
        if (got && !want) unexpectedAllows.push(cell);
        if (!got && want) unexpectedDenies.push(cell);
      }
    }
  }
  return { cases, unexpectedAllows, unexpectedDenies };
}

describe("authorization matrix (pure evaluation)", () => {
  let total = 0;
  it.each(SCENARIOS.map((s) => [s.name, s] as const))("%s", (_name, s) => {
    const r = run(s);
    total += r.cases;
    expect({ unexpectedAllows: r.unexpectedAllows, unexpectedDenies: r.unexpectedDenies }).toEqual({ unexpectedAllows: [], unexpectedDenies: [] });
  });
  it("covers thousands of cells", () => {
    expect(total).toBeGreaterThan(3000);
  });
});

describe("malformed policies are refused with the reason", () => {
  const bad: [string, string, RegExp][] = [
    ["not JSON", "{", /not valid JSON/],
    ["an array", "[]", /JSON object/],
    ["no Statement", JSON.stringify({ Version: "2012-10-17" }), /Statement is required/],
    ["empty Statement", JSON.stringify({ Statement: [] }), /must not be empty/],
    ["bad Version", JSON.stringify({ Version: "2020-01-01", Statement: [adminAll] }), /Version/],
    ["unknown top-level element", JSON.stringify({ Statement: [adminAll], Extra: 1 }), /unknown top-level element Extra/],
    ["bad Effect", JSON.stringify(doc({ ...adminAll, Effect: "Maybe" })), /Effect/],
    ["no Principal", JSON.stringify(doc({ Effect: "Allow", Action: "kms:*", Resource: "*" })), /Principal is required/],
    ["NotPrincipal", JSON.stringify(doc({ ...adminAll, NotPrincipal: { AWS: P.bob } })), /NotPrincipal is not supported/],
    ["Service principal", JSON.stringify(doc(stmt({ Service: "s3.amazonaws.com" }, "kms:*"))), /principal type Service/],
    ["bad principal", JSON.stringify(doc(stmt({ AWS: "bob" }, "kms:*"))), /not a valid principal/],
    ["no Action", JSON.stringify(doc({ Effect: "Allow", Principal: "*", Resource: "*" })), /Action or NotAction/],
    ["Action and NotAction", JSON.stringify(doc({ ...adminAll, NotAction: "kms:Decrypt" })), /Action or NotAction/],
    ["non-KMS action", JSON.stringify(doc(stmt("*", "s3:GetObject"))), /not a KMS action/],
    ["no Resource", JSON.stringify(doc({ Effect: "Allow", Principal: "*", Action: "kms:*" })), /Resource is required/],
    ["unknown operator", JSON.stringify(doc(stmt("*", "kms:*", { Condition: { DateLessThan: { "aws:CurrentTime": "x" } } }))), /DateLessThan is not supported/],
    ["bad condition key", JSON.stringify(doc(stmt("*", "kms:*", { Condition: { StringEquals: { nocolon: "x" } } }))), /not a condition key/],
    ["duplicate Sid", JSON.stringify(doc({ ...adminAll, Sid: "a" }, { ...adminAll, Sid: "a" })), /duplicate Sid/],
    ["empty Action list", JSON.stringify(doc(stmt("*", []))), /must not be empty/],
  ];
  it.each(bad)("%s", (_name, text, reason) => {
    expect(() => parsePolicy(text)).toThrow(expect.objectContaining({ code: "MalformedPolicyDocumentException", message: expect.stringMatching(reason) }));
  });
  it("refuses a policy over 32 KB with LimitExceededException", () => {
    const big = JSON.stringify(doc({ ...adminAll, Sid: "x".repeat(33 * 1024) }));
    expect(() => parsePolicy(big)).toThrow(expect.objectContaining({ code: "LimitExceededException" }));
  });
});
