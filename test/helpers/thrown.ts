import { expect } from "vitest";
import { KmsError, type KmsErrorCode } from "../../src/kms/errors.js";

/** What `fn` throws; fails the test if it returns normally. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error("expected the call to throw");
}

/** Asserts that `fn` throws a KmsError with exactly this code and message. */
export function expectKmsError(fn: () => unknown, code: KmsErrorCode, message: string): void {
  const err = thrown(fn);
  expect(err).toBeInstanceOf(KmsError);
  expect((err as KmsError).code).toBe(code);
  expect((err as KmsError).message).toBe(message);
}
