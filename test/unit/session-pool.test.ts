import type pkcs11js from "pkcs11js";
import { describe, expect, it } from "vitest";
import { CKR } from "../../src/hsm/runtime/return-values.js";
import { CallTimeoutError, SessionPool } from "../../src/hsm/runtime/session-pool.js";

/**
 * The pool's bookkeeping on its own (the real-device behaviour is in test/hsm/faults*.test.ts): a module
 * stand-in that only opens, closes and describes sessions, and records which ones were closed.
 */
function fakeModule() {
  let next = 1;
  const open = new Set<number>();
  const closed: number[] = [];
  const mod = {
    C_OpenSession: () => {
      const h = next++;
      open.add(h);
      return Buffer.from([h]);
    },
    C_CloseSession: (s: Buffer) => {
      closed.push(s[0]!);
      open.delete(s[0]!);
    },
    C_GetSessionInfo: (s: Buffer) => {
      if (!open.has(s[0]!)) throw Object.assign(new Error("CKR_SESSION_HANDLE_INVALID"), { code: CKR.SESSION_HANDLE_INVALID });
      return { state: 3 };
    },
  };
  return { mod: mod as unknown as pkcs11js.PKCS11, open, closed, loseAll: () => open.clear() };
}

const fail = (rv: number) => Promise.reject(Object.assign(new Error(`rv ${rv}`), { code: rv }));
const tick = () => new Promise((r) => setTimeout(r, 5));

describe("SessionPool", () => {
  it("a call past the timeout answers CallTimeoutError; its session is never lent again, not waited for, closed if it settles", async () => {
    const f = fakeModule();
    const pool = new SessionPool(f.mod, Buffer.from([0]), 0, 2, {}, 30);
    let settle!: () => void;
    const stuck = pool.use(() => new Promise<void>((r) => (settle = r)));
    await expect(stuck).rejects.toBeInstanceOf(CallTimeoutError);
    expect(pool.size).toEqual({ open: 0, idle: 0, abandoned: 1 });
    // The next calls get other sessions.
    const used: number[] = [];
    await pool.use(async (s) => void used.push(s[0]!));
    await pool.use(async (s) => void used.push(s[0]!));
    expect(used).not.toContain(1);
    pool.close();
    await pool.drained(); // does not wait for the stuck call
    expect(f.closed).not.toContain(1);
    settle();
    await tick();
    expect(f.closed).toContain(1);
    expect(pool.size.abandoned).toBe(0);
  });

  it("closing the pool never closes a session a call is running on: it is closed when the call settles", async () => {
    const f = fakeModule();
    const pool = new SessionPool(f.mod, Buffer.from([0]), 0, 2, {});
    let settle!: () => void;
    const running = pool.use(() => new Promise<void>((r) => (settle = r)));
    await pool.use(async () => undefined); // a second, idle session
    pool.close();
    expect(f.closed).toEqual([2]);
    let drained = false;
    void pool.drained().then(() => (drained = true));
    await tick();
    expect(drained).toBe(false);
    settle();
    await running;
    await tick();
    expect(f.closed).toEqual([2, 1]);
    expect(drained).toBe(true);
  });

  it("CKR_GENERAL_ERROR on a session that is gone is a session loss: retried once on a fresh session", async () => {
    const f = fakeModule();
    const retried: (number | undefined)[] = [];
    const pool = new SessionPool(f.mod, Buffer.from([0]), 0, 2, { sessionRetried: (rv) => retried.push(rv) });
    let calls = 0;
    const result = await pool.use(async (s) => {
      if (calls++ === 0) {
        f.loseAll(); // closed behind our back while the call ran
        return fail(CKR.GENERAL_ERROR);
      }
      return s[0];
    });
    expect(result).toBe(2);
    expect(retried).toEqual([CKR.GENERAL_ERROR]);
  });

  it("CKR_GENERAL_ERROR on a live session is the call's own failure: not retried (a bad GCM tag, say)", async () => {
    const f = fakeModule();
    const pool = new SessionPool(f.mod, Buffer.from([0]), 0, 2, {});
    let calls = 0;
    await expect(
      pool.use(() => {
        calls++;
        return fail(CKR.GENERAL_ERROR);
      }),
    ).rejects.toMatchObject({ code: CKR.GENERAL_ERROR });
    expect(calls).toBe(1);
    expect(f.closed).toEqual([]); // the session stays in the pool
  });
});
