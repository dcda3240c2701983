import { page, type PageFields, type ResponseStyle, timestamp } from "./style.js";

/** Responses of the key policy and grant operations. */

/** GetKeyPolicy. */
export function getKeyPolicyResponse(res: { readonly policy: string; readonly policyName: string }) {
  return { Policy: res.policy, PolicyName: res.policyName };
}

/** ListKeyPolicies. */
export function listKeyPoliciesResponse(res: PageFields & { readonly policyNames: readonly string[] }) {
  return { PolicyNames: res.policyNames, ...page(res) };
}

/** CreateGrant. */
export function createGrantResponse(res: { readonly grantToken: string; readonly grantId: string }) {
  return { GrantToken: res.grantToken, GrantId: res.grantId };
}

/** An encryption context: an object from the service, a Map from ts-proto (useMapType). */
type StringMap = Readonly<Record<string, string>> | ReadonlyMap<string, string>;

const isMap = (m: StringMap): m is ReadonlyMap<string, string> => m instanceof Map;

/**
 * A constraint's context, or undefined when it has no pairs: gRPC cannot tell an absent map from an empty
 * one, and the service stores neither (an empty constraint is no constraint). Object.fromEntries keeps a
 * "__proto__" key a key; an object from the service is passed as it is, for the same reason.
 */
function context(m: StringMap | undefined): Readonly<Record<string, string>> | undefined {
  if (m === undefined) return undefined;
  const obj = isMap(m) ? Object.fromEntries(m) : m;
  return Object.keys(obj).length > 0 ? obj : undefined;
}

/** A grant as the service lists it and as the ts-proto GrantListEntry carries it ("" when absent). */
export interface GrantFields {
  readonly keyId: string;
  readonly grantId: string;
  readonly name?: string | undefined;
  readonly creationDate?: Date | undefined;
  readonly granteePrincipal: string;
  readonly retiringPrincipal?: string | undefined;
  readonly issuingAccount: string;
  readonly operations: readonly string[];
  readonly constraints?: { readonly encryptionContextSubset?: StringMap | undefined; readonly encryptionContextEquals?: StringMap | undefined } | undefined;
}

/** AWS's GrantListEntry: absent members left out, Constraints only when it holds a context. */
export function grant(g: GrantFields, style: ResponseStyle) {
  const subset = context(g.constraints?.encryptionContextSubset);
  const equals = context(g.constraints?.encryptionContextEquals);
  return {
    KeyId: g.keyId,
    GrantId: g.grantId,
    ...(g.name ? { Name: g.name } : {}),
    CreationDate: timestamp(g.creationDate, style),
    GranteePrincipal: g.granteePrincipal,
    ...(g.retiringPrincipal ? { RetiringPrincipal: g.retiringPrincipal } : {}),
    IssuingAccount: g.issuingAccount,
    Operations: g.operations,
    ...(subset || equals ? { Constraints: { ...(subset ? { EncryptionContextSubset: subset } : {}), ...(equals ? { EncryptionContextEquals: equals } : {}) } } : {}),
  };
}

/** ListGrants and ListRetirableGrants. */
export function listGrantsResponse(res: PageFields & { readonly grants: readonly GrantFields[] }, style: ResponseStyle) {
  return { Grants: res.grants.map((g) => grant(g, style)), ...page(res) };
}
