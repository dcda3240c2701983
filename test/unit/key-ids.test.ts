import { describe, expect, it } from "vitest";
import { keyArn, parseKeyId, type Partition } from "../../src/kms/key-ids.js";
import { expectKmsError } from "../helpers/thrown.js";

const P: Partition = { region: "eu-central-1", accountId: "111122223333" };
const ID = "1234abcd-12ab-34cd-56ef-1234567890ab";
const ARN = `arn:aws:kms:eu-central-1:111122223333:key/${ID}`;



describe("keyArn", () => {
  it("builds the ARN in the partition's region and account", () => {
    expect(keyArn(P, ID)).toBe(ARN);
    expect(keyArn({ region: "us-west-2", accountId: "444455556666" }, ID)).toBe(`arn:aws:kms:us-west-2:444455556666:key/${ID}`);
  });
});

describe("parseKeyId", () => {
  it("accepts a bare key id", () => {
    expect(parseKeyId(P, ID)).toBe(ID);
  });

  it("accepts the key ARN of this region and account and returns the key id", () => {
    expect(parseKeyId(P, ARN)).toBe(ID);
    expect(parseKeyId(P, keyArn(P, ID))).toBe(ID);
  });

  it.each([
    ["another region", `arn:aws:kms:us-east-1:111122223333:key/${ID}`],
    ["another account", `arn:aws:kms:eu-central-1:999999999999:key/${ID}`],
    ["another partition", `arn:aws-cn:kms:eu-central-1:111122223333:key/${ID}`],
    ["another service", `arn:aws:s3:eu-central-1:111122223333:key/${ID}`],
    ["an upper-case key id", ID.toUpperCase()],
    ["an ARN with an upper-case key id", `arn:aws:kms:eu-central-1:111122223333:key/${ID.toUpperCase()}`],
    ["an ARN with trailing text", `${ARN}x`],
    ["an ARN without key id", "arn:aws:kms:eu-central-1:111122223333:key/"],
    ["a key id with whitespace", ` ${ID}`],
    ["garbage", "not-a-key"],
  ])("answers NotFoundException for %s", (_what, input) => {
    expectKmsError(() => parseKeyId(P, input), "NotFoundException", `Invalid keyId '${input}'.`);
  });

  it.each([
    "alias/my-key",
    "alias/aws/s3",
    "arn:aws:kms:eu-central-1:111122223333:alias/my-key",
    "arn:aws:kms:us-east-1:999999999999:alias/other",
  ])("answers NotFoundException for the alias %j where the operation takes no alias", (input) => {
    expectKmsError(
      () => parseKeyId(P, input),
      "NotFoundException",
      `Invalid keyId '${input}': KeyId takes a key id or key ARN here, not an alias.`,
    );
  });

  it("returns alias names (also from alias ARNs of this partition) where the operation takes aliases", () => {
    const aliases = { aliases: true };
    expect(parseKeyId(P, "alias/my-key", "KeyId", aliases)).toBe("alias/my-key");
    expect(parseKeyId(P, "arn:aws:kms:eu-central-1:111122223333:alias/my/key", "KeyId", aliases)).toBe("alias/my/key");
    expect(parseKeyId(P, ARN, "KeyId", aliases)).toBe(ID);
    const foreign = "arn:aws:kms:us-east-1:999999999999:alias/other";
    expectKmsError(() => parseKeyId(P, foreign, "KeyId", aliases), "NotFoundException", `Alias ${foreign} is not found.`);
  });

  it.each([undefined, ""])("answers ValidationException for a missing KeyId (%j)", (input) => {
    expectKmsError(() => parseKeyId(P, input), "ValidationException", "KeyId is required.");
  });

  it("names the given field in the ValidationException", () => {
    expectKmsError(() => parseKeyId(P, "", "DestinationKeyId"), "ValidationException", "DestinationKeyId is required.");
  });

  it("answers ValidationException for more than 2048 characters, NotFoundException at 2048", () => {
    expectKmsError(
      () => parseKeyId(P, "k".repeat(2049)),
      "ValidationException",
      "KeyId must be between 1 and 2048 characters long.",
    );
    const atLimit = "k".repeat(2048);
    expectKmsError(() => parseKeyId(P, atLimit), "NotFoundException", `Invalid keyId '${atLimit}'.`);
  });
});
