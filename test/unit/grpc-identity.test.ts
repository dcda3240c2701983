import { describe, expect, it } from "vitest";
import { principalFromCertificate } from "../../src/api/grpc/identity.js";

const ACCOUNT = "111122223333";

describe("principal of a client certificate", () => {
  it.each([
    ["the first URI SAN, verbatim", { subject: { CN: "x" }, subjectaltname: "DNS:a.example, URI:arn:aws:iam::111122223333:role/app, URI:spiffe://x" }, "uri-san", "arn:aws:iam::111122223333:role/app"],
    ["a SPIFFE id as URI SAN", { subjectaltname: "URI:spiffe://prod/ns/app" }, "uri-san", "spiffe://prod/ns/app"],
    ["the subject CN as an IAM user", { subject: { CN: "alice" } }, "subject-cn", `arn:aws:iam::${ACCOUNT}:user/alice`],
    ["the first of several CNs", { subject: { CN: ["bob", "eve"] } }, "subject-cn", `arn:aws:iam::${ACCOUNT}:user/bob`],
  ] as const)("%s", (_n, cert, from, want) => {
    expect(principalFromCertificate(cert, from, ACCOUNT)).toBe(want);
  });

  it.each([
    ["no certificate", undefined, "uri-san"],
    ["an empty certificate object (plaintext peer)", {}, "uri-san"],
    ["no URI SAN", { subject: { CN: "x" }, subjectaltname: "DNS:a.example" }, "uri-san"],
    ["no CN", { subjectaltname: "URI:arn:x" }, "subject-cn"],
    ["a CN that is no IAM user name", { subject: { CN: "has space/and:colon" } }, "subject-cn"],
  ] as const)("refuses %s with AccessDeniedException", (_n, cert, from) => {
    expect(() => principalFromCertificate(cert, from, ACCOUNT)).toThrow(expect.objectContaining({ code: "AccessDeniedException" }));
  });
});
