import { KmsError } from "../errors.js";

/**
 * Key policies: the subset of the IAM policy grammar that AWS KMS key policies use, parsed once into a form
 * that evaluates without re-reading JSON. Parsing refuses anything it does not understand (an unknown
 * operator, NotPrincipal, a non-KMS action) with MalformedPolicyDocumentException naming the problem,
 * because silently ignoring part of a policy could grant more than its author meant.
 */

/** AWS's limit on a key policy document (bytes of UTF-8). */
export const MAX_POLICY_BYTES = 32 * 1024;
export const POLICY_NAME = "default";
const VERSIONS = ["2012-10-17", "2008-10-17"];

export type Effect = "Allow" | "Deny";

export interface Condition {
  /** Base operator, lower case without qualifier and IfExists: "stringequals", "stringlike", "bool", "null"... */
  readonly op: string;
  readonly negated: boolean;
  readonly ifExists: boolean;
  readonly qualifier: "ForAnyValue" | "ForAllValues" | undefined;
  /** Condition key, lower case (IAM condition key names are case-insensitive). */
  readonly key: string;
  readonly values: readonly string[];
}

export interface Statement {
  readonly sid: string | undefined;
  readonly effect: Effect;
  /** "*" matches every principal; otherwise exact principal strings. */
  readonly principals: "*" | ReadonlySet<string>;
  readonly actions: readonly RegExp[];
  /** NotAction: the statement applies to every action except these. */
  readonly notActions: boolean;
  readonly resources: readonly RegExp[];
  readonly conditions: readonly Condition[];
}

export interface ParsedPolicy {
  readonly statements: readonly Statement[];
}

/** What one request asks: the caller, the action (`kms:Encrypt`), the key ARN and the condition keys' values. */
export interface PolicyRequest {
  readonly principal: string;
  readonly action: string;
  readonly resource: string;
  /** Condition keys in lower case; a multi-valued key (kms:EncryptionContextKeys) has several values. */
  readonly conditionKeys: ReadonlyMap<string, readonly string[]>;
}

export type PolicyDecision = "Allow" | "Deny" | "NotApplicable";

const OPERATORS: Record<string, { base: string; negated: boolean }> = {
  stringequals: { base: "stringequals", negated: false },
  stringnotequals: { base: "stringequals", negated: true },
  stringequalsignorecase: { base: "stringequalsignorecase", negated: false },
  stringnotequalsignorecase: { base: "stringequalsignorecase", negated: true },
  stringlike: { base: "stringlike", negated: false },
  stringnotlike: { base: "stringlike", negated: true },
  arnequals: { base: "stringequals", negated: false },
  arnnotequals: { base: "stringequals", negated: true },
  arnlike: { base: "stringlike", negated: false },
  arnnotlike: { base: "stringlike", negated: true },
  bool: { base: "bool", negated: false },
  null: { base: "null", negated: false },
  numericequals: { base: "numericequals", negated: false },
  numericnotequals: { base: "numericequals", negated: true },
  numericlessthan: { base: "numericlessthan", negated: false },
  numericlessthanequals: { base: "numericlessthanequals", negated: false },
  numericgreaterthan: { base: "numericgreaterthan", negated: false },
  numericgreaterthanequals: { base: "numericgreaterthanequals", negated: false },
};

function malformed(reason: string): KmsError {
  return new KmsError("MalformedPolicyDocumentException", `The key policy is malformed: ${reason}`);
}

/** `*` and `?` wildcards as IAM uses them in actions, resources and StringLike values. */
export function wildcard(pattern: string, ignoreCase: boolean): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`, ignoreCase ? "is" : "s");
}

function stringList(v: unknown, what: string): string[] {
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0) throw malformed(`${what} must not be empty.`);
  for (const s of list) if (typeof s !== "string" || s.length === 0) throw malformed(`${what} must be a string or a list of strings.`);
  return list as string[];
}

/** A 12-digit account id in Principal means that account's root, as AWS normalises it. */
function normalisePrincipal(p: string): string {
  return /^\d{12}$/.test(p) ? `arn:aws:iam::${p}:root` : p;
}

function parsePrincipal(v: unknown, i: number): "*" | Set<string> {
  if (v === "*") return "*";
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw malformed(`Statement ${i}: Principal must be "*" or {"AWS": [...]}.`);
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length === 0) throw malformed(`Statement ${i}: Principal must name at least one principal.`);
  const out = new Set<string>();
  for (const [kind, value] of entries) {
    if (kind !== "AWS") throw malformed(`Statement ${i}: principal type ${kind} is not supported (only "AWS").`);
    for (const p of stringList(value, `Statement ${i}: Principal.AWS`)) {
      if (p === "*") return "*";
      if (!/^(arn:[^\s]+|\d{12}|[a-z][a-z0-9+.-]*:[^\s]+)$/.test(p)) throw malformed(`Statement ${i}: '${p}' is not a valid principal (an ARN, a 12-digit account id or "*").`);
      out.add(normalisePrincipal(p));
    }
  }
  return out;
}

function parseActions(v: unknown, i: number, field: string): RegExp[] {
  return stringList(v, `Statement ${i}: ${field}`).map((a) => {
    if (a !== "*" && !/^kms:[A-Za-z*?]+$/i.test(a)) throw malformed(`Statement ${i}: action '${a}' is not a KMS action (kms:<Operation>, wildcards allowed).`);
    return wildcard(a, true);
  });
}

function parseConditions(v: unknown, i: number): Condition[] {
  if (v === undefined) return [];
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw malformed(`Statement ${i}: Condition must be an object.`);
  const out: Condition[] = [];
  for (const [rawOp, block] of Object.entries(v as Record<string, unknown>)) {
    let name = rawOp;
    let qualifier: Condition["qualifier"];
    const q = /^(ForAnyValue|ForAllValues):(.+)$/i.exec(name);
    if (q) {
      qualifier = q[1]!.toLowerCase() === "foranyvalue" ? "ForAnyValue" : "ForAllValues";
      name = q[2]!;
    }
    let ifExists = false;
    if (/IfExists$/i.test(name) && name.toLowerCase() !== "null") {
      ifExists = true;
      name = name.slice(0, -"IfExists".length);
    }
    const op = OPERATORS[name.toLowerCase()];
    if (!op) throw malformed(`Statement ${i}: condition operator ${rawOp} is not supported.`);
    if (typeof block !== "object" || block === null || Array.isArray(block)) throw malformed(`Statement ${i}: ${rawOp} must map condition keys to values.`);
    for (const [key, values] of Object.entries(block as Record<string, unknown>)) {
      if (!/^[A-Za-z0-9]+:[^\s]+$/.test(key)) throw malformed(`Statement ${i}: '${key}' is not a condition key.`);
      const list = (Array.isArray(values) ? values : [values]).map((x) => (typeof x === "boolean" || typeof x === "number" ? String(x) : x));
      out.push({ op: op.base, negated: op.negated, ifExists, qualifier, key: key.toLowerCase(), values: stringList(list, `Statement ${i}: ${rawOp}.${key}`) });
    }
  }
  return out;
}

/** Parses and validates a policy document; MalformedPolicyDocumentException says what is wrong. */
export function parsePolicy(text: string): ParsedPolicy {
  if (Buffer.byteLength(text, "utf8") > MAX_POLICY_BYTES) {
    throw new KmsError("LimitExceededException", `The key policy exceeds the ${MAX_POLICY_BYTES}-byte limit.`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw malformed("it is not valid JSON.");
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw malformed("it must be a JSON object.");
  const d = doc as Record<string, unknown>;
  for (const k of Object.keys(d)) if (!["Version", "Id", "Statement"].includes(k)) throw malformed(`unknown top-level element ${k}.`);
  if (d.Version !== undefined && !VERSIONS.includes(d.Version as string)) throw malformed(`Version must be one of ${VERSIONS.join(", ")}.`);
  if (d.Statement === undefined) throw malformed("Statement is required.");
  const raw = Array.isArray(d.Statement) ? d.Statement : [d.Statement];
  if (raw.length === 0) throw malformed("Statement must not be empty.");
  const sids = new Set<string>();
  const statements = raw.map((s: unknown, i): Statement => {
    if (typeof s !== "object" || s === null || Array.isArray(s)) throw malformed(`Statement ${i} must be an object.`);
    const st = s as Record<string, unknown>;
    for (const k of Object.keys(st)) {
      if (!["Sid", "Effect", "Principal", "Action", "NotAction", "Resource", "Condition"].includes(k)) {
        throw malformed(`Statement ${i}: element ${k} is not supported.`);
      }
    }
    if (st.Sid !== undefined) {
      if (typeof st.Sid !== "string" || !/^[A-Za-z0-9 _.:/=+\-@]*$/.test(st.Sid)) throw malformed(`Statement ${i}: Sid must be a string of letters, digits and spaces.`);
      if (st.Sid !== "" && sids.has(st.Sid)) throw malformed(`Statement ${i}: duplicate Sid '${st.Sid}'.`);
      sids.add(st.Sid);
    }
    if (st.Effect !== "Allow" && st.Effect !== "Deny") throw malformed(`Statement ${i}: Effect must be "Allow" or "Deny".`);
    if (st.Principal === undefined) throw malformed(`Statement ${i}: Principal is required in a key policy.`);
    if ((st.Action === undefined) === (st.NotAction === undefined)) throw malformed(`Statement ${i}: exactly one of Action or NotAction is required.`);
    if (st.Resource === undefined) throw malformed(`Statement ${i}: Resource is required.`);
    return {
      sid: st.Sid as string | undefined,
      effect: st.Effect,
      principals: parsePrincipal(st.Principal, i),
      actions: parseActions(st.Action ?? st.NotAction, i, st.Action !== undefined ? "Action" : "NotAction"),
      notActions: st.Action === undefined,
      resources: stringList(st.Resource, `Statement ${i}: Resource`).map((r) => wildcard(r, false)),
      conditions: parseConditions(st.Condition, i),
    };
  });
  return { statements };
}

function matchValue(op: string, actual: string, expected: string): boolean {
  switch (op) {
    case "stringequals":
      return actual === expected;
    case "stringequalsignorecase":
      return actual.toLowerCase() === expected.toLowerCase();
    case "stringlike":
      return wildcard(expected, false).test(actual);
    case "bool":
      return actual.toLowerCase() === expected.toLowerCase();
    default: {
      const a = Number(actual);
      const e = Number(expected);
      if (!Number.isFinite(a) || !Number.isFinite(e)) return false;
      if (op === "numericequals") return a === e;
      if (op === "numericlessthan") return a < e;
      if (op === "numericlessthanequals") return a <= e;
      if (op === "numericgreaterthan") return a > e;
      return a >= e;
    }
  }
}

/** IAM condition semantics, including the absent-key rules of negated operators, IfExists and set qualifiers. */
export function conditionHolds(c: Condition, keys: ReadonlyMap<string, readonly string[]>): boolean {
  const actual = keys.get(c.key);
  if (c.op === "null") {
    const wantAbsent = c.values.some((v) => v.toLowerCase() === "true");
    return wantAbsent === (actual === undefined || actual.length === 0);
  }
  if (actual === undefined || actual.length === 0) {
    if (c.qualifier === "ForAllValues") return true; // vacuously true over an empty set, as IAM
    if (c.ifExists) return true;
    return c.negated && c.qualifier === undefined;
  }
  const anyMatch = (v: string) => c.values.some((e) => matchValue(c.op, v, e));
  // Negated operators match when the value matches none of the listed values.
  const holds = (v: string) => (c.negated ? !anyMatch(v) : anyMatch(v));
  if (c.qualifier === "ForAllValues") return actual.every(holds);
  if (c.qualifier === "ForAnyValue") return actual.some(holds);
  // A single-valued key; a multi-valued key without qualifier acts as ForAnyValue (negated: none matches).
  return c.negated ? actual.every(holds) : actual.some(holds);
}

function statementApplies(s: Statement, req: PolicyRequest): boolean {
  if (s.principals !== "*" && !s.principals.has(req.principal)) return false;
  const named = s.actions.some((a) => a.test(req.action));
  if (named === s.notActions) return false;
  if (!s.resources.some((r) => r.test(req.resource))) return false;
  return s.conditions.every((c) => conditionHolds(c, req.conditionKeys));
}

/** Evaluates a policy: an applicable Deny wins, then any applicable Allow; otherwise the policy says nothing. */
export function evaluatePolicy(policy: ParsedPolicy, req: PolicyRequest): PolicyDecision {
  let allowed = false;
  for (const s of policy.statements) {
    if (!statementApplies(s, req)) continue;
    if (s.effect === "Deny") return "Deny";
    allowed = true;
  }
  return allowed ? "Allow" : "NotApplicable";
}

/** The policy a key gets when CreateKey names none: full access for the administrator principal. */
export function defaultPolicy(administrator: string): string {
  return JSON.stringify(
    {
      Version: "2012-10-17",
      Id: "key-default-1",
      Statement: [{ Sid: "Enable administrator permissions", Effect: "Allow", Principal: { AWS: administrator }, Action: "kms:*", Resource: "*" }],
    },
    null,
    2,
  );
}
