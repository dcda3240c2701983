import { describe, expect, it } from "vitest";
import { parsePkcs11Uri } from "../../src/config/pkcs11-uri.js";

const MOD = "/usr/lib/softhsm/libsofthsm2.so";

describe("parsePkcs11Uri: valid URIs", () => {
  it("parses token, module-path and a file pin-source", () => {
    expect(parsePkcs11Uri(`pkcs11:token=p11kms?module-path=${MOD}&pin-source=file:pin`)).toEqual({
      token: "p11kms",
      modulePath: MOD,
      pinSource: { kind: "file", path: "pin" },
    });
  });

  it("parses an env pin-source", () => {
    expect(parsePkcs11Uri(`pkcs11:token=t?module-path=${MOD}&pin-source=env:HSM_PIN`)).toEqual({
      token: "t",
      modulePath: MOD,
      pinSource: { kind: "env", name: "HSM_PIN" },
    });
  });

  it("accepts the query attributes in any order", () => {
    expect(parsePkcs11Uri(`pkcs11:token=t?pin-source=env:P&module-path=${MOD}`)).toEqual({
      token: "t",
      modulePath: MOD,
      pinSource: { kind: "env", name: "P" },
    });
  });

  it.each([
    ["file:/etc/p11kms/pin", "/etc/p11kms/pin"],
    ["file:///etc/p11kms/pin", "/etc/p11kms/pin"],
    ["file:relative/pin", "relative/pin"],
  ])("reads pin-source=%s as the path %j", (src, path) => {
    expect(parsePkcs11Uri(`pkcs11:token=t?module-path=${MOD}&pin-source=${src}`).pinSource).toEqual({ kind: "file", path });
  });

  it("percent-decodes every value", () => {
    const uri =
      "pkcs11:token=My%20Token%3B%3F%26%3D%25?module-path=%2Fopt%2Fhsm%20vendor%2Flib.so&pin-source=file:%2Fetc%2Fmy%20pin";
    expect(parsePkcs11Uri(uri)).toEqual({
      token: "My Token;?&=%",
      modulePath: "/opt/hsm vendor/lib.so",
      pinSource: { kind: "file", path: "/etc/my pin" },
    });
  });

  it("decodes UTF-8 percent-encodings and leaves '+' alone", () => {
    const p = parsePkcs11Uri(`pkcs11:token=caf%C3%A9+1?module-path=${MOD}&pin-source=env:PIN`);
    expect(p.token).toBe("café+1");
  });

  it("accepts module-name alongside module-path (known, ignored)", () => {
    expect(parsePkcs11Uri(`pkcs11:token=t?module-name=softhsm2&module-path=${MOD}&pin-source=env:P`).modulePath).toBe(MOD);
  });
});

describe("parsePkcs11Uri: refused URIs", () => {
  it.each([
    ["no scheme", `token=t?module-path=${MOD}&pin-source=env:P`, "a PKCS#11 URI starts with 'pkcs11:'"],
    ["upper-case scheme", `PKCS11:token=t?module-path=${MOD}&pin-source=env:P`, "a PKCS#11 URI starts with 'pkcs11:'"],
    ["empty string", "", "a PKCS#11 URI starts with 'pkcs11:'"],
    ["pin-value", `pkcs11:token=t?module-path=${MOD}&pin-value=1234`, "pin-value is not accepted: use pin-source=file:<path> or env:<VAR>"],
    [
      "pin-value next to pin-source",
      `pkcs11:token=t?module-path=${MOD}&pin-source=env:P&pin-value=1234`,
      "pin-value is not accepted: use pin-source=file:<path> or env:<VAR>",
    ],
    ["unknown query attribute", `pkcs11:token=t?module-path=${MOD}&pin-source=env:P&slot=1`, "unknown attribute 'slot'"],
    ["unknown path attribute", `pkcs11:token=t;object=k?module-path=${MOD}&pin-source=env:P`, "unknown attribute 'object'"],
    ["query attribute in the path", `pkcs11:token=t;module-path=${MOD}?pin-source=env:P`, "unknown attribute 'module-path'"],
    ["path attribute in the query", `pkcs11:token=t?module-path=${MOD}&pin-source=env:P&token=u`, "unknown attribute 'token'"],
    [
      "supported-by-RFC but not by p11kms path attribute",
      `pkcs11:token=t;serial=0123?module-path=${MOD}&pin-source=env:P`,
      "path attribute 'serial' is not supported; tokens are selected by label",
    ],
    ["missing token", `pkcs11:?module-path=${MOD}&pin-source=env:P`, "the URI must name the token: token=<label>"],
    ["token chosen by serial only", `pkcs11:serial=1?module-path=${MOD}&pin-source=env:P`, "the URI must name the token: token=<label>"],
    ["empty token", `pkcs11:token=?module-path=${MOD}&pin-source=env:P`, "the URI must name the token: token=<label>"],
    ["no query at all", "pkcs11:token=t", "the URI must give module-path=<path to the PKCS#11 library>"],
    ["missing module-path", "pkcs11:token=t?pin-source=env:P", "the URI must give module-path=<path to the PKCS#11 library>"],
    ["module-name instead of module-path", "pkcs11:token=t?module-name=softhsm2&pin-source=env:P", "the URI must give module-path=<path to the PKCS#11 library>"],
    ["empty module-path", "pkcs11:token=t?module-path=&pin-source=env:P", "the URI must give module-path=<path to the PKCS#11 library>"],
    ["missing pin-source", `pkcs11:token=t?module-path=${MOD}`, "the URI must give pin-source=file:<path> or pin-source=env:<VARIABLE>"],
    ["other pin-source scheme", `pkcs11:token=t?module-path=${MOD}&pin-source=https://x/pin`, "pin-source must be file:<path> or env:<VARIABLE>"],
    ["bare pin-source path", `pkcs11:token=t?module-path=${MOD}&pin-source=/etc/pin`, "pin-source must be file:<path> or env:<VARIABLE>"],
    ["empty file pin-source", `pkcs11:token=t?module-path=${MOD}&pin-source=file:`, "pin-source is empty"],
    ["empty env pin-source", `pkcs11:token=t?module-path=${MOD}&pin-source=env:`, "pin-source is empty"],
    ["repeated token", `pkcs11:token=a;token=b?module-path=${MOD}&pin-source=env:P`, "attribute 'token' is repeated"],
    ["repeated module-path", `pkcs11:token=t?module-path=${MOD}&module-path=/x.so&pin-source=env:P`, "attribute 'module-path' is repeated"],
    ["repeated pin-source", `pkcs11:token=t?module-path=${MOD}&pin-source=env:A&pin-source=env:B`, "attribute 'pin-source' is repeated"],
    ["attribute without '='", `pkcs11:token?module-path=${MOD}&pin-source=env:P`, "malformed attribute 'token'"],
    ["attribute without name", `pkcs11:=t?module-path=${MOD}&pin-source=env:P`, "malformed attribute '=t'"],
    ["trailing ';'", `pkcs11:token=t;?module-path=${MOD}&pin-source=env:P`, "malformed attribute ''"],
    ["trailing '&'", `pkcs11:token=t?module-path=${MOD}&pin-source=env:P&`, "malformed attribute ''"],
    ["bad percent-encoding", `pkcs11:token=a%zz?module-path=${MOD}&pin-source=env:P`, "attribute 'token' has a malformed percent-encoding"],
    ["truncated percent-encoding", `pkcs11:token=t?module-path=%2&pin-source=env:P`, "attribute 'module-path' has a malformed percent-encoding"],
  ])("%s", (_what, uri, message) => {
    expect(() => parsePkcs11Uri(uri)).toThrow(new Error(message));
  });
});
