import pkcs11js from "pkcs11js";
import { describe, expect, it } from "vitest";
import { CKR, isGcmAuthFailure, isHandleError, poisonsSession, rvClass, rvName, rvOf } from "../../src/hsm/runtime/return-values.js";

type Name = keyof typeof CKR;
const NAMES = Object.keys(CKR) as Name[];

describe("CKR", () => {
  it.each(NAMES.filter((n) => n !== "AEAD_DECRYPT_FAILED"))("CKR.%s equals pkcs11js.CKR_%s", (name) => {
    const value = (pkcs11js as unknown as Record<string, number>)[`CKR_${name}`];
    expect(value).toBeTypeOf("number");
    expect(CKR[name]).toBe(value);
  });

  it("CKR.AEAD_DECRYPT_FAILED is the PKCS#11 v3.0 value 0x35 (pkcs11js does not define it)", () => {
    expect(CKR.AEAD_DECRYPT_FAILED).toBe(0x35);
  });

  it("has no two names with the same value", () => {
    expect(new Set(Object.values(CKR)).size).toBe(NAMES.length);
  });
});

describe("rvOf", () => {
  it("reads the code of a pkcs11js error", () => {
    expect(rvOf(new pkcs11js.Pkcs11Error("CKR_DEVICE_ERROR", CKR.DEVICE_ERROR, "C_Encrypt"))).toBe(0x30);
  });

  it("reads a numeric code property of any object, including 0", () => {
    expect(rvOf({ code: 0x150 })).toBe(0x150);
    expect(rvOf({ code: 0 })).toBe(0);
  });

  it.each([
    ["undefined", undefined],
    ["null", null],
    ["a number", 5],
    ["a string", "CKR_GENERAL_ERROR"],
    ["an error without code", new Error("x")],
    ["a Node errno error (string code)", Object.assign(new Error("x"), { code: "ENOENT" })],
    ["an object with a numeric-string code", { code: "5" }],
  ])("returns undefined for %s", (_what, err) => {
    expect(rvOf(err)).toBeUndefined();
  });
});

describe("poisonsSession", () => {
  const poisoning: Name[] = [
    "BUFFER_TOO_SMALL",
    "OPERATION_ACTIVE",
    "SESSION_CLOSED",
    "SESSION_HANDLE_INVALID",
    "DEVICE_ERROR",
    "DEVICE_REMOVED",
    "TOKEN_NOT_PRESENT",
    "USER_NOT_LOGGED_IN",
    "DEVICE_MEMORY",
    "TOKEN_NOT_RECOGNIZED",
    "CRYPTOKI_NOT_INITIALIZED",
  ];

  it.each(poisoning)("CKR_%s poisons the session", (name) => {
    expect(poisonsSession(CKR[name])).toBe(true);
  });

  it.each(NAMES.filter((n) => !poisoning.includes(n)))("CKR_%s does not", (name) => {
    expect(poisonsSession(CKR[name])).toBe(false);
  });

  it("an unknown or missing value does not", () => {
    expect(poisonsSession(undefined)).toBe(false);
    expect(poisonsSession(0x80000000)).toBe(false);
  });
});

describe("rvClass", () => {
  const session: Name[] = ["SESSION_HANDLE_INVALID", "SESSION_CLOSED", "OPERATION_ACTIVE"];
  const token: Name[] = [
    "DEVICE_ERROR",
    "DEVICE_MEMORY",
    "DEVICE_REMOVED",
    "TOKEN_NOT_PRESENT",
    "TOKEN_NOT_RECOGNIZED",
    "USER_NOT_LOGGED_IN",
    "CRYPTOKI_NOT_INITIALIZED",
  ];

  it.each(session)("CKR_%s is a session error (drop the session, retry once)", (name) => {
    expect(rvClass(CKR[name])).toBe("session");
  });
  it.each(token)("CKR_%s is a token error (key store FAILED, reconnect)", (name) => {
    expect(rvClass(CKR[name])).toBe("token");
  });
  it.each(NAMES.filter((n) => !session.includes(n) && !token.includes(n)))("CKR_%s is neither", (name) => {
    expect(rvClass(CKR[name])).toBe("other");
  });
  it("handle errors are neither: one key's object is gone, not the token (the device layer decides with the login state)", () => {
    expect(rvClass(CKR.KEY_HANDLE_INVALID)).toBe("other");
    expect(rvClass(CKR.OBJECT_HANDLE_INVALID)).toBe("other");
    expect(isHandleError(CKR.KEY_HANDLE_INVALID) && isHandleError(CKR.OBJECT_HANDLE_INVALID)).toBe(true);
    expect(isHandleError(CKR.SESSION_HANDLE_INVALID)).toBe(false);
  });
  it("an unknown or missing value is neither", () => {
    expect(rvClass(undefined)).toBe("other");
    expect(rvClass(0x80000001)).toBe("other");
  });
});

describe("rvName", () => {
  it("names known values and shows others in hex", () => {
    expect(rvName(CKR.DEVICE_ERROR)).toBe("CKR_DEVICE_ERROR");
    expect(rvName(0x80000001)).toBe("0x80000001");
    expect(rvName(undefined)).toBe("none");
  });
});

describe("isGcmAuthFailure", () => {
  const authFailures: Name[] = ["GENERAL_ERROR", "ENCRYPTED_DATA_INVALID", "ENCRYPTED_DATA_LEN_RANGE", "AEAD_DECRYPT_FAILED"];

  it.each(authFailures)("CKR_%s means the ciphertext does not authenticate", (name) => {
    expect(isGcmAuthFailure(CKR[name])).toBe(true);
  });

  it.each(NAMES.filter((n) => !authFailures.includes(n)))("CKR_%s does not", (name) => {
    expect(isGcmAuthFailure(CKR[name])).toBe(false);
  });

  it("a missing value does not", () => {
    expect(isGcmAuthFailure(undefined)).toBe(false);
  });
});
