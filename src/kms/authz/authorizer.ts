import { accountOf, type Caller } from "../caller.js";
import { KmsError } from "../errors.js";
import type { MetadataStore } from "../ports.js";
import type { EncryptionContext, KeyRecord } from "../types.js";
import { grantAllows, type GrantRecord, invalidGrantToken, parseGrantToken, tokenMatches } from "./grants.js";
import { defaultPolicy, evaluatePolicy, type ParsedPolicy, parsePolicy, type PolicyDecision, type PolicyRequest } from "./policy.js";

/** Who administers the account (docs/authorization.md "Principals"). */
export interface AccessConfig {
  /** The "account root": named in the default key policy, allowed every account-level operation. */
  readonly administrator: string;
  /** Further principals allowed the account-level operations (CreateKey, ListKeys, ListAliases, ...). */
  readonly accountPrincipals: readonly string[];
}

/** What a request adds to the condition keys, besides the caller and the key. */
export interface AuthzContext {
  readonly encryptionContext?: EncryptionContext | undefined;
  readonly grantTokens?: readonly string[] | undefined;
  /** The alias the request named the key by (kms:RequestAlias). */
  readonly requestAlias?: string | undefined;
  /** The request's algorithm: kms:EncryptionAlgorithm, kms:SigningAlgorithm or kms:MacAlgorithm. */
  readonly algorithm?: { readonly kind: "EncryptionAlgorithm" | "SigningAlgorithm" | "MacAlgorithm"; readonly value: string } | undefined;
  /** Operation-specific condition keys (lower-case names), e.g. kms:granteeprincipal for CreateGrant. */
  readonly extraKeys?: ReadonlyMap<string, readonly string[]> | undefined;
}

export interface AuthzOutcome {
  readonly decision: "Allow" | "Deny" | "ImplicitDeny";
  /** The grant that allowed the request, when a grant (not the policy) did. */
  readonly grant?: GrantRecord | undefined;
}

/** The condition keys of a request (lower-case names, as policies are matched case-insensitively). */
export function conditionKeys(caller: Caller, key: KeyRecord, ctx: AuthzContext): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  keys.set("aws:principalarn", [caller.principal]);
  const account = accountOf(caller.principal);
  if (account) keys.set("kms:calleraccount", [account]);
  if (caller.sourceIp) keys.set("aws:sourceip", [caller.sourceIp]);
  keys.set("kms:grantisforawsresource", ["false"]);
  keys.set("kms:keyspec", [key.keySpec]);
  keys.set("kms:keyusage", [key.keyUsage]);
  keys.set("kms:keyorigin", [key.origin]);
  if (ctx.requestAlias) keys.set("kms:requestalias", [ctx.requestAlias]);
  if (ctx.encryptionContext) {
    const names = Object.keys(ctx.encryptionContext);
    if (names.length > 0) keys.set("kms:encryptioncontextkeys", names);
    for (const n of names) keys.set(`kms:encryptioncontext:${n.toLowerCase()}`, [ctx.encryptionContext[n]!]);
  }
  if (ctx.algorithm) keys.set(`kms:${ctx.algorithm.kind.toLowerCase()}`, [ctx.algorithm.value]);
  for (const [k, v] of ctx.extraKeys ?? []) keys.set(k, [...v]);
  return keys;
}

/**
 * The pure decision: explicit Deny in the policy wins; then an Allow from the policy; then a grant of the
 * caller on this key that allows the operation under its constraints; otherwise an implicit deny.
 */
export function decide(
  policy: ParsedPolicy,
  grants: readonly GrantRecord[],
  req: PolicyRequest,
  operation: string,
  encryptionContext: EncryptionContext | undefined,
): AuthzOutcome {
  const fromPolicy: PolicyDecision = evaluatePolicy(policy, req);
  if (fromPolicy === "Deny") return { decision: "Deny" };
  if (fromPolicy === "Allow") return { decision: "Allow" };
  const grant = grants.find((g) => grantAllows(g, req.principal, operation, encryptionContext));
  return grant ? { decision: "Allow", grant } : { decision: "ImplicitDeny" };
}

/**
 * Authorization against key policies and grants, with the parsed policies cached per key (a policy is
 * parsed once, not on every request; PutKeyPolicy refreshes the entry). The daemon is the only writer of
 * its database, so the cache cannot go stale behind its back.
 */
export class Authorizer {
  private readonly cache = new Map<string, ParsedPolicy>();
  private readonly fallback: ParsedPolicy;

  constructor(
    private readonly metadata: MetadataStore,
    readonly config: AccessConfig,
  ) {
    this.fallback = parsePolicy(defaultPolicy(config.administrator));
  }

  /** The parsed policy of a key: its stored document, or the default for keys that predate policies. */
  async policyOf(keyId: string): Promise<ParsedPolicy> {
    const hit = this.cache.get(keyId);
    if (hit) return hit;
    const text = await this.metadata.getKeyPolicy(keyId);
    const parsed = text === undefined ? this.fallback : parsePolicy(text);
    if (this.cache.size >= 10_000) this.cache.clear(); // bounded: a full cache starts over
    this.cache.set(keyId, parsed);
    return parsed;
  }

  /** Records a newly stored policy (already parsed by the caller). */
  remember(keyId: string, parsed: ParsedPolicy): void {
    this.cache.set(keyId, parsed);
  }

  /** Throws AccessDeniedException unless `caller` may run `operation` on `key`; returns the allowing grant if any. */
  async authorize(caller: Caller, key: KeyRecord, keyArn: string, operation: string, ctx: AuthzContext = {}): Promise<AuthzOutcome> {
    if (caller.authMethod === "internal") return { decision: "Allow" };
    await this.checkGrantTokens(key.keyId, ctx.grantTokens);
    const req: PolicyRequest = { principal: caller.principal, action: `kms:${operation}`, resource: keyArn, conditionKeys: conditionKeys(caller, key, ctx) };
    const policy = await this.policyOf(key.keyId);
    // Grants are read only when the policy neither allows nor denies: the common case costs no grant lookup.
    const first = decide(policy, [], req, operation, ctx.encryptionContext);
    const outcome = first.decision === "ImplicitDeny" ? decide(policy, await this.metadata.grantsFor(key.keyId, caller.principal), req, operation, ctx.encryptionContext) : first;
    if (outcome.decision !== "Allow") throw denied(caller, req.action, keyArn, outcome.decision === "Deny");
    return outcome;
  }

  /** Account-level operations (no key policy applies): the administrator and the configured account principals. */
  authorizeAccount(caller: Caller, operation: string, resource: string): void {
    if (caller.authMethod === "internal") return;
    if (caller.principal === this.config.administrator || this.config.accountPrincipals.includes(caller.principal)) return;
    throw denied(caller, `kms:${operation}`, resource, false);
  }

  /** The principal a policy lockout check is made for: the internal caller stands for the administrator. */
  lockoutPrincipal(caller: Caller): string {
    return caller.authMethod === "internal" ? this.config.administrator : caller.principal;
  }

  /**
   * Grant tokens must be tokens this service issued, of live grants on this key (AWS answers
   * InvalidGrantTokenException otherwise). Grants are effective at once here, so a valid token adds nothing.
   */
  private async checkGrantTokens(keyId: string, tokens: readonly string[] | undefined): Promise<void> {
    for (const t of tokens ?? []) {
      const { grantId, secretHash } = parseGrantToken(t);
      const grant = await this.metadata.getGrant(grantId);
      if (!grant || grant.keyId !== keyId || !tokenMatches(grant, secretHash)) throw invalidGrantToken();
    }
  }
}

export function denied(caller: Caller, action: string, resource: string, explicit: boolean): KmsError {
  const why = explicit ? "with an explicit deny in a resource-based policy" : "because no resource-based policy allows the " + action + " action";
  return new KmsError("AccessDeniedException", `User: ${caller.principal} is not authorized to perform: ${action} on resource: ${resource} ${why}`);
}
