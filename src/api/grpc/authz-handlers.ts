import type { GrantConstraints as ProtoConstraints, KeyManagementServiceServer } from "../../gen/p11kms/v1/kms.js";
import type { GrantConstraints } from "../../kms/authz/grants.js";
import type { GrantListEntry } from "../../kms/grant-operations.js";
import { context } from "./codec.js";
import type { UnaryWrapper } from "./lifecycle-handlers.js";

type AuthzRpcs =
  | "putKeyPolicy"
  | "getKeyPolicy"
  | "listKeyPolicies"
  | "createGrant"
  | "listGrants"
  | "listRetirableGrants"
  | "retireGrant"
  | "revokeGrant";

/** Empty maps mean "no constraint", as absent fields on gRPC. */
function constraintsIn(c: ProtoConstraints | undefined): GrantConstraints | undefined {
  if (!c) return undefined;
  const subset = c.encryptionContextSubset.size > 0 ? context(c.encryptionContextSubset) : undefined;
  const equals = c.encryptionContextEquals.size > 0 ? context(c.encryptionContextEquals) : undefined;
  return subset || equals ? { encryptionContextSubset: subset, encryptionContextEquals: equals } : undefined;
}

function grantOut(g: GrantListEntry) {
  return {
    ...g,
    name: g.name ?? "",
    retiringPrincipal: g.retiringPrincipal ?? "",
    operations: [...g.operations],
    constraints: g.constraints && {
      encryptionContextSubset: new Map(Object.entries(g.constraints.encryptionContextSubset ?? {})),
      encryptionContextEquals: new Map(Object.entries(g.constraints.encryptionContextEquals ?? {})),
    },
  };
}

const page = <T>(res: { truncated: boolean; nextMarker?: string | undefined }, body: T) => ({ ...body, truncated: res.truncated, nextMarker: res.nextMarker ?? "" });

/** Key policy and grant RPCs. "" means absent, as everywhere on gRPC; the service validates. */
export function authzHandlers(unary: UnaryWrapper): Pick<KeyManagementServiceServer, AuthzRpcs> {
  return {
    putKeyPolicy: unary("PutKeyPolicy", async (r, service) => {
      await service.putKeyPolicy(r);
      return {};
    }),
    getKeyPolicy: unary("GetKeyPolicy", (r, service) => service.getKeyPolicy(r)),
    listKeyPolicies: unary("ListKeyPolicies", async (r, service) => {
      const res = await service.listKeyPolicies(r);
      return page(res, { policyNames: res.policyNames });
    }),
    createGrant: unary("CreateGrant", (r, service) =>
      service.createGrant({ ...r, retiringPrincipal: r.retiringPrincipal || undefined, name: r.name || undefined, constraints: constraintsIn(r.constraints) }),
    ),
    listGrants: unary("ListGrants", async (r, service) => {
      const res = await service.listGrants({ ...r, grantId: r.grantId || undefined, granteePrincipal: r.granteePrincipal || undefined });
      return page(res, { grants: res.grants.map(grantOut) });
    }),
    listRetirableGrants: unary("ListRetirableGrants", async (r, service) => {
      const res = await service.listRetirableGrants(r);
      return page(res, { grants: res.grants.map(grantOut) });
    }),
    retireGrant: unary("RetireGrant", async (r, service) => {
      await service.retireGrant({ grantToken: r.grantToken || undefined, keyId: r.keyId || undefined, grantId: r.grantId || undefined, dryRun: r.dryRun });
      return {};
    }),
    revokeGrant: unary("RevokeGrant", async (r, service) => {
      await service.revokeGrant(r);
      return {};
    }),
  };
}
