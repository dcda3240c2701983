import { execFile } from "node:child_process";
import { promisify } from "node:util";
import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteAliasCommand,
  DescribeCustomKeyStoresCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  DisconnectCustomKeyStoreCommand,
  ConnectCustomKeyStoreCommand,
  EnableKeyCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  GetKeyRotationStatusCommand,
  ListAliasesCommand,
  ListKeyRotationsCommand,
  ListResourceTagsCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateAliasCommand,
  UpdateKeyDescriptionCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { afterAll, describe, expect, it } from "vitest";
import { kmsClient } from "../helpers/aws.js";
import { CLI, startDaemon } from "../helpers/daemon.js";
import type { TestToken } from "../helpers/softhsm.js";

const run = promisify(execFile);
const tokens: TestToken[] = [];
afterAll(() => tokens.forEach((t) => t.remove()));
const DAY = 86_400_000;

/** Waits for the daemon's stdout to deliver a log line (it arrives asynchronously after the response). */
async function logged(logs: Record<string, unknown>[], match: (l: Record<string, unknown>) => boolean): Promise<boolean> {
  for (let i = 0; i < 200 && !logs.some(match); i++) await new Promise((r) => setTimeout(r, 10));
  return logs.some(match);
}

async function errorName(p: Promise<unknown>): Promise<string> {
  return p.then(() => "ok", (e: { name?: string }) => e.name ?? "?");
}

describe("key lifecycle through the AWS SDK (@aws-sdk/client-kms) and the CLI", () => {
  it("aliases, states, tags, rotation and key stores over the facade", async () => {
    const d = await startDaemon();
    tokens.push(d.token);
    const kms: KMSClient = kmsClient(d);
    const keyId = (await kms.send(new CreateKeyCommand({ Description: "lifecycle" }))).KeyMetadata!.KeyId!;
    const other = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;

    await kms.send(new CreateAliasCommand({ AliasName: "alias/app", TargetKeyId: keyId }));
    expect(await errorName(kms.send(new CreateAliasCommand({ AliasName: "alias/app", TargetKeyId: keyId })))).toBe("AlreadyExistsException");
    expect(await errorName(kms.send(new CreateAliasCommand({ AliasName: "alias/aws/x", TargetKeyId: keyId })))).toBe("InvalidAliasNameException");
    const blob = (await kms.send(new EncryptCommand({ KeyId: "alias/app", Plaintext: Buffer.from("hi") }))).CiphertextBlob!;
    await kms.send(new UpdateAliasCommand({ AliasName: "alias/app", TargetKeyId: other }));
    expect((await kms.send(new DescribeKeyCommand({ KeyId: "alias/app" }))).KeyMetadata!.KeyId).toBe(other);
    const aliases = await kms.send(new ListAliasesCommand({ KeyId: other }));
    expect(aliases.Aliases!.map((a) => a.AliasName)).toEqual(["alias/app"]);
    expect(aliases.Aliases![0]!.CreationDate).toBeInstanceOf(Date);

    await kms.send(new DisableKeyCommand({ KeyId: keyId }));
    expect(await errorName(kms.send(new DecryptCommand({ CiphertextBlob: blob })))).toBe("DisabledException");
    await kms.send(new EnableKeyCommand({ KeyId: keyId }));
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: blob }))).Plaintext!).toString()).toBe("hi");

    await kms.send(new TagResourceCommand({ KeyId: keyId, Tags: [{ TagKey: "team", TagValue: "a" }, { TagKey: "x", TagValue: "" }] }));
    await kms.send(new UntagResourceCommand({ KeyId: keyId, TagKeys: ["x"] }));
    expect((await kms.send(new ListResourceTagsCommand({ KeyId: keyId }))).Tags).toEqual([{ TagKey: "team", TagValue: "a" }]);
    expect(await errorName(kms.send(new TagResourceCommand({ KeyId: keyId, Tags: [{ TagKey: "aws:x", TagValue: "" }] })))).toBe("TagException");
    await kms.send(new UpdateKeyDescriptionCommand({ KeyId: keyId, Description: "renamed" }));

    await kms.send(new EnableKeyRotationCommand({ KeyId: keyId, RotationPeriodInDays: 180 }));
    const status = await kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId }));
    expect(status).toMatchObject({ KeyRotationEnabled: true, RotationPeriodInDays: 180 });
    expect(status.NextRotationDate!.getTime()).toBeGreaterThan(Date.now() + 179 * DAY);
    await kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
    const rotations = await kms.send(new ListKeyRotationsCommand({ KeyId: keyId }));
    expect(rotations.Rotations!.map((r) => r.RotationType)).toEqual(["ON_DEMAND"]);
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: blob }))).Plaintext!).toString()).toBe("hi");

    const deletion = await kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
    expect(deletion).toMatchObject({ KeyState: "PendingDeletion", PendingWindowInDays: 7 });
    expect(deletion.DeletionDate!.getTime()).toBeGreaterThan(Date.now() + 6.9 * DAY);
    expect(await errorName(kms.send(new DecryptCommand({ CiphertextBlob: blob })))).toBe("KMSInvalidStateException");
    expect(await logged(d.logs, (l) => l.event === "PendingDeletionKeyUsed" && l.keyId === keyId && l.operation === "Decrypt")).toBe(true);
    await kms.send(new CancelKeyDeletionCommand({ KeyId: keyId }));
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).toBe("Disabled");
    await kms.send(new DeleteAliasCommand({ AliasName: "alias/app" }));

    const stores = await kms.send(new DescribeCustomKeyStoresCommand({}));
    expect(stores.CustomKeyStores!.map((s) => [s.CustomKeyStoreId, s.ConnectionState])).toEqual([["default", "CONNECTED"]]);
    await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: "default" }));
    expect(await errorName(kms.send(new EncryptCommand({ KeyId: other, Plaintext: Buffer.from("x") })))).toBe("KMSInvalidStateException");
    expect(await errorName(kms.send(new CreateKeyCommand({})))).toBe("CustomKeyStoreInvalidStateException");
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: "default" }));
    expect((await kms.send(new EncryptCommand({ KeyId: other, Plaintext: Buffer.from("x") }))).KeyId).toContain(other);
    kms.destroy();
    expect(await d.stop()).toBe(0);
  });

  it("deletes a key whose deadline passed while the daemon was down, before serving (test clock offset)", async () => {
    const first = await startDaemon();
    tokens.push(first.token);
    let kms = kmsClient(first);
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const kept = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
    kms.destroy();
    expect(await first.stop()).toBe(0);

    // Restarted "eight days later": the daemon's clock runs ahead by the offset (testing only).
    const second = await startDaemon({ token: first.token, configPath: first.configPath, env: { P11KMS_TEST_CLOCK_OFFSET_MS: String(8 * DAY) } });
    kms = kmsClient(second);
    expect(second.logs.some((l) => l.event === "KeyDeleted" && l.keyId === keyId)).toBe(true);
    const serving = second.logs.findIndex((l) => l.msg === "p11kms serving");
    expect(second.logs.findIndex((l) => l.event === "KeyDeleted")).toBeLessThan(serving);
    expect(await errorName(kms.send(new DescribeKeyCommand({ KeyId: keyId })))).toBe("NotFoundException");
    expect((await kms.send(new DescribeKeyCommand({ KeyId: kept }))).KeyMetadata!.KeyState).toBe("Enabled");

    // The CLI speaks the same operations, with the AWS CLI's option names.
    const env = { ...process.env, P11KMS_ENDPOINT: second.endpoint };
    await run(process.execPath, [CLI, "create-alias", "--alias-name", "alias/cli", "--target-key-id", kept], { env });
    const listed = JSON.parse((await run(process.execPath, [CLI, "list-aliases", "--key-id", kept], { env })).stdout) as { Aliases: { AliasName: string }[] };
    expect(listed.Aliases.map((a) => a.AliasName)).toEqual(["alias/cli"]);
    const sched = JSON.parse((await run(process.execPath, [CLI, "schedule-key-deletion", "--key-id", kept, "--pending-window-in-days", "7"], { env })).stdout) as { KeyState: string };
    expect(sched.KeyState).toBe("PendingDeletion");
    const bad = await run(process.execPath, [CLI, "enable-key-rotation", "--key-id", kept, "--rotation-period-in-days", "30"], { env }).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(bad?.code).toBe(254);
    expect(bad?.stderr).toContain("ValidationException");
    kms.destroy();
    expect(await second.stop()).toBe(0);
  });
});
