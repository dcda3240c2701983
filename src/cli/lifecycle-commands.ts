import { type Command, Option } from "commander";
import { describeCustomKeyStoresResponse, getKeyRotationStatusResponse, keyIdResponse, listAliasesResponse, listKeyRotationsResponse, listResourceTagsResponse, scheduleKeyDeletionResponse } from "../api/aws/responses/lifecycle.js";
import { collect, parseIntArg, parseTag, type CliTag } from "./args.js";
import type { CommandKit } from "./asymmetric-commands.js";
import { call } from "./client.js";
import { CLI_STYLE } from "./output.js";

const keyIdOption = (c: Command) => c.requiredOption("--key-id <id>", "key id or key ARN");
const listOptions = (c: Command) => c.addOption(new Option("--limit <n>").argParser(parseIntArg)).option("--marker <marker>");

/**
 * Key lifecycle commands with the AWS CLI's names and options, and the AWS facade's response shapes
 * (src/api/aws/responses/lifecycle.ts): aliases, enable/disable, deletion, descriptions and tags, rotation,
 * key stores. Operations without a result print nothing.
 */
export function registerLifecycleCommands({ kms }: Pick<CommandKit, "kms">): void {
  type Alias = { aliasName: string; targetKeyId: string };
  const aliasOptions = (c: Command) => c.requiredOption("--alias-name <name>", "alias/...").requiredOption("--target-key-id <id>", "key id or key ARN");
  kms<Alias>("create-alias", "give a key an alias", aliasOptions, async (c, o, t) => void (await call(c, c.createAlias, o, t)));
  kms<Alias>("update-alias", "point an alias at another key", aliasOptions, async (c, o, t) => void (await call(c, c.updateAlias, o, t)));
  kms<{ aliasName: string }>("delete-alias", "delete an alias", (c) => c.requiredOption("--alias-name <name>"), async (c, o, t) => void (await call(c, c.deleteAlias, o, t)));
  kms<{ keyId?: string; limit?: number; marker?: string }>(
    "list-aliases",
    "list aliases (one page), optionally of one key",
    (c) => listOptions(c.option("--key-id <id>")),
    async (c, o, t) => listAliasesResponse(await call(c, c.listAliases, { keyId: o.keyId ?? "", limit: o.limit, marker: o.marker ?? "" }, t), CLI_STYLE),
  );

  type KeyId = { keyId: string };
  kms<KeyId>("enable-key", "enable a disabled key", keyIdOption, async (c, o, t) => void (await call(c, c.enableKey, o, t)));
  kms<KeyId>("disable-key", "disable a key (cryptographic use fails with DisabledException)", keyIdOption, async (c, o, t) => void (await call(c, c.disableKey, o, t)));
  kms<KeyId & { pendingWindowInDays?: number }>(
    "schedule-key-deletion",
    "delete a key after 7-30 days (default 30)",
    (c) => keyIdOption(c).addOption(new Option("--pending-window-in-days <days>").argParser(parseIntArg)),
    async (c, o, t) => scheduleKeyDeletionResponse(await call(c, c.scheduleKeyDeletion, { keyId: o.keyId, pendingWindowInDays: o.pendingWindowInDays }, t), CLI_STYLE),
  );
  kms<KeyId>("cancel-key-deletion", "cancel a scheduled deletion (the key becomes Disabled)", keyIdOption, async (c, o, t) => keyIdResponse(await call(c, c.cancelKeyDeletion, o, t)));

  kms<KeyId & { description: string }>(
    "update-key-description",
    "change a key's description",
    (c) => keyIdOption(c).requiredOption("--description <text>"),
    async (c, o, t) => void (await call(c, c.updateKeyDescription, o, t)),
  );
  kms<KeyId & { tags: CliTag[] }>(
    "tag-resource",
    "add or overwrite tags",
    (c) => keyIdOption(c).addOption(new Option("--tags <tag>", "TagKey=k,TagValue=v (repeatable) or JSON list").argParser(parseTag).makeOptionMandatory()),
    async (c, o, t) => void (await call(c, c.tagResource, o, t)),
  );
  kms<KeyId & { tagKeys: string[] }>(
    "untag-resource",
    "remove tags",
    (c) => keyIdOption(c).addOption(new Option("--tag-keys <key>", "tag key (repeatable)").argParser(collect).makeOptionMandatory()),
    async (c, o, t) => void (await call(c, c.untagResource, o, t)),
  );
  kms<KeyId & { limit?: number; marker?: string }>("list-resource-tags", "list a key's tags (one page)", (c) => listOptions(keyIdOption(c)), async (c, o, t) =>
    listResourceTagsResponse(await call(c, c.listResourceTags, { keyId: o.keyId, limit: o.limit, marker: o.marker ?? "" }, t)),
  );

  kms<KeyId & { rotationPeriodInDays?: number }>(
    "enable-key-rotation",
    "rotate a symmetric key automatically every 90-2560 days (default 365)",
    (c) => keyIdOption(c).addOption(new Option("--rotation-period-in-days <days>").argParser(parseIntArg)),
    async (c, o, t) => void (await call(c, c.enableKeyRotation, { keyId: o.keyId, rotationPeriodInDays: o.rotationPeriodInDays }, t)),
  );
  kms<KeyId>("disable-key-rotation", "stop automatic rotation", keyIdOption, async (c, o, t) => void (await call(c, c.disableKeyRotation, o, t)));
  kms<KeyId>("get-key-rotation-status", "whether a key rotates, its period and next date", keyIdOption, async (c, o, t) =>
    getKeyRotationStatusResponse(await call(c, c.getKeyRotationStatus, o, t), CLI_STYLE),
  );
  kms<KeyId>("rotate-key-on-demand", "rotate a key now (at most 25 times per key)", keyIdOption, async (c, o, t) => keyIdResponse(await call(c, c.rotateKeyOnDemand, o, t)));
  kms<KeyId & { limit?: number; marker?: string }>("list-key-rotations", "completed rotations of a key (one page)", (c) => listOptions(keyIdOption(c)), async (c, o, t) =>
    listKeyRotationsResponse(await call(c, c.listKeyRotations, { keyId: o.keyId, limit: o.limit, marker: o.marker ?? "" }, t), CLI_STYLE),
  );

  kms<{ customKeyStoreId?: string; customKeyStoreName?: string; limit?: number; marker?: string }>(
    "describe-custom-key-stores",
    "the key stores (PKCS#11 tokens) and their connection states",
    (c) => listOptions(c.option("--custom-key-store-id <id>").option("--custom-key-store-name <name>")),
    async (c, o, t) => {
      const r = await call(c, c.describeCustomKeyStores, { customKeyStoreId: o.customKeyStoreId ?? "", customKeyStoreName: o.customKeyStoreName ?? "", limit: o.limit, marker: o.marker ?? "" }, t);
      return describeCustomKeyStoresResponse(r, CLI_STYLE);
    },
  );
  type Store = { customKeyStoreId: string };
  const storeOption = (c: Command) => c.requiredOption("--custom-key-store-id <id>");
  kms<Store>("connect-custom-key-store", "connect a key store (its keys become usable)", storeOption, async (c, o, t) => void (await call(c, c.connectCustomKeyStore, o, t)));
  kms<Store>("disconnect-custom-key-store", "disconnect a key store (its keys become Unavailable)", storeOption, async (c, o, t) => void (await call(c, c.disconnectCustomKeyStore, o, t)));
}
