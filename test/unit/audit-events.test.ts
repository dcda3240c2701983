import { describe, expect, it } from "vitest";
import { OPERATIONS } from "../../src/api/aws/operations.js";
import { peerAddress } from "../../src/api/grpc/caller.js";
import { type AuditEvent, buildEvent } from "../../src/audit/event.js";
import { AuditHub, type Subscriber } from "../../src/audit/hub.js";
import { AUDIT_FIELDS, redact } from "../../src/audit/redact.js";

const P = { region: "us-east-1", accountId: "111122223333" };
const CALLER = { principal: "anonymous", authMethod: "insecure" as const, requestId: "r1" };

function ev(name: string, keyId = "k"): AuditEvent {
  return buildEvent(P, "grpc", CALLER, name, { keys: [keyId], versions: new Map() }, {}, new Date());
}

describe("audit redaction (allow-list per operation)", () => {
  it("has an entry for every operation of the API", () => {
    for (const op of Object.keys(OPERATIONS)) expect(AUDIT_FIELDS[op], op).toBeDefined();
  });

  it("copies only allowed fields: secrets and fields it does not know are dropped", () => {
    const req = {
      keyId: "alias/a",
      plaintext: Buffer.from("secret"),
      encryptionContext: { purpose: "x" },
      grantTokens: ["tok"],
      someFutureField: "leak?",
      dryRun: false,
    };
    expect(redact(req, AUDIT_FIELDS.Encrypt!.request)).toEqual({ keyId: "alias/a", encryptionContext: { purpose: "x" } });
    const res = { ciphertextBlob: Buffer.from("c"), plaintext: Buffer.from("dk"), keyId: "arn:k" };
    expect(redact(res, AUDIT_FIELDS.GenerateDataKey!.response)).toEqual({ keyId: "arn:k" });
  });

  it("never copies bytes, even under an allowed name, and treats proto3 defaults as absent", () => {
    expect(redact({ keyId: Buffer.from("x"), description: "", limit: 0 }, { keyId: true, description: true, limit: true })).toBeNull();
    expect(redact({ tags: [{ tagKey: "a", tagValue: "b", extra: Buffer.from("z") }] }, { tags: { tagKey: true, tagValue: true } })).toEqual({
      tags: [{ tagKey: "a", tagValue: "b" }],
    });
  });

  it("keeps an encryption context key named __proto__ as a key", () => {
    const ctx = Object.fromEntries([["__proto__", "v"]]);
    const out = redact({ encryptionContext: ctx }, { encryptionContext: true })!;
    expect(Object.keys(out.encryptionContext as object)).toEqual(["__proto__"]);
  });

  it("says whether an operation is read-only as CloudTrail does", () => {
    expect(ev("Encrypt").readOnly).toBe(true);
    expect(ev("DescribeKey").readOnly).toBe(true);
    expect(ev("ScheduleKeyDeletion").readOnly).toBe(false);
    expect(ev("CreateKey").readOnly).toBe(false);
  });
});

describe("audit hub (WatchAuditEvents)", () => {
  function sink(capacity: number) {
    const got: { name: string; lost: number }[] = [];
    let drain: (() => void) | undefined;
    const s: Subscriber & { got: typeof got; drain(): void } = {
      got,
      send: (e, lost) => {
        got.push({ name: e.eventName, lost });
        return got.length < capacity;
      },
      onDrain: (resume) => (drain = resume),
      end: () => undefined,
      drain: () => drain?.(),
    };
    return s;
  }

  it("filters by event name and key", () => {
    const hub = new AuditHub(10, () => undefined);
    const s = sink(100);
    hub.subscribe({ eventNames: ["DisableKey"], keyIds: ["a"] }, s);
    hub.publish([ev("DisableKey", "a"), ev("DisableKey", "b"), ev("EnableKey", "a")]);
    expect(s.got.map((g) => g.name)).toEqual(["DisableKey"]);
  });

  it("drops events for a subscriber that cannot keep up, without blocking, and tells it how many it lost", () => {
    let dropped = 0;
    const hub = new AuditHub(3, (n) => (dropped += n));
    const slow = sink(1); // its transport is full after one message
    const fast = sink(1000);
    hub.subscribe({ eventNames: [], keyIds: [] }, slow);
    hub.subscribe({ eventNames: [], keyIds: [] }, fast);
    hub.publish(Array.from({ length: 10 }, (_, i) => ev(`E${i}`)));
    expect(fast.got).toHaveLength(10);
    expect(slow.got.map((g) => g.name)).toEqual(["E0"]);
    expect(dropped).toBe(6); // E1..E3 queued, E4..E9 dropped
    slow.drain();
    hub.publish([ev("E10")]);
    expect(slow.got.map((g) => g.name)).toEqual(["E0", "E1"]);
    slow.drain();
    slow.drain();
    slow.drain();
    expect(slow.got.map((g) => [g.name, g.lost])).toEqual([["E0", 0], ["E1", 0], ["E2", 0], ["E3", 0], ["E10", 6]]);
  });
});

describe("gRPC caller", () => {
  it.each([
    ["ipv4:127.0.0.1:50123", "127.0.0.1"],
    ["127.0.0.1:50123", "127.0.0.1"],
    ["ipv6:[::1]:50123", "::1"],
    ["[::1]:50123", "::1"],
    ["unix:/run/p11kms.sock", "unix:/run/p11kms.sock"],
  ])("source address of peer %s is %s", (peer, ip) => {
    expect(peerAddress(peer)).toBe(ip);
  });
});
