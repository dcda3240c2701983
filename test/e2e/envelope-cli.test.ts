import { execFile, spawn } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, type DaemonHandle, startDaemon } from "../helpers/daemon.js";
import { layout, pattern } from "../helpers/envelope.js";

const run = promisify(execFile);
let d: DaemonHandle;
let keyId: string;
let dir: string;

async function cli(args: string[], opts: { input?: Buffer; env?: Record<string, string> } = {}): Promise<{ out: Buffer; err: string; code: number }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, "--endpoint", d.endpoint, ...args], { env: { ...process.env, ...opts.env } });
    const out: Buffer[] = [];
    let err = "";
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => (err += b.toString()));
    child.on("close", (code) => resolve({ out: Buffer.concat(out), err, code: code ?? -1 }));
    child.stdin.end(opts.input ?? Buffer.alloc(0));
  });
}

beforeAll(async () => {
  d = await startDaemon();
  dir = d.token.dir;
  const created = await run(process.execPath, [CLI, "--endpoint", d.endpoint, "create-key", "--query", "KeyMetadata.Arn", "--output", "text"]);
  keyId = created.stdout.trim();
});
afterAll(async () => {
  await d?.stop();
  d?.token.remove();
});

const leftovers = () => readdirSync(dir).filter((f) => f.includes(".p11kms-"));

describe("p11kms encrypt-file / decrypt-file", () => {
  it("round-trips a file, with the context required back", async () => {
    const plain = pattern(3 * 65536 + 123);
    writeFileSync(join(dir, "in.bin"), plain);
    const e = await cli(["encrypt-file", join(dir, "in.bin"), join(dir, "in.p11e"), "--key-id", keyId, "--context", "app=cli", "--context", "env=test"]);
    expect(e).toMatchObject({ code: 0, err: "" }); // not a TTY: no progress bar
    expect(readFileSync(join(dir, "in.p11e")).subarray(0, 4).toString()).toBe("P11E");
    const dd = await cli(["decrypt-file", join(dir, "in.p11e"), join(dir, "out.bin"), "--context", "app=cli"]);
    expect(dd.code).toBe(0);
    expect(readFileSync(join(dir, "out.bin")).equals(plain)).toBe(true);
    const wrong = await cli(["decrypt-file", join(dir, "in.p11e"), join(dir, "wrong.bin"), "--context", "app=other"]);
    expect(wrong.code).toBe(255);
    expect(wrong.err).toContain("ContextMismatch");
    expect(existsSync(join(dir, "wrong.bin"))).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  it("streams stdin to stdout with -", async () => {
    const e = await cli(["encrypt-file", "-", "-", "--key-id", keyId], { input: Buffer.from("piped secret") });
    expect(e.code).toBe(0);
    const dd = await cli(["decrypt-file", "-", "-"], { input: e.out });
    expect(dd.out.toString()).toBe("piped secret");
  });

  it("never leaves a partial plaintext: a tampered last frame fails and OUT does not exist", async () => {
    const plain = pattern(5 * 65536);
    writeFileSync(join(dir, "big.bin"), plain);
    expect((await cli(["encrypt-file", join(dir, "big.bin"), join(dir, "big.p11e"), "--key-id", keyId])).code).toBe(0);
    const m = readFileSync(join(dir, "big.p11e"));
    const last = layout(m).frames.at(-1)!;
    m[last.end - 1]! ^= 1;
    writeFileSync(join(dir, "bad.p11e"), m);
    writeFileSync(join(dir, "keep.bin"), "previous content");
    for (const target of ["bad.bin", "keep.bin"]) {
      const r = await cli(["decrypt-file", join(dir, "bad.p11e"), join(dir, target)]);
      expect(r.code).toBe(255);
      expect(r.err).toMatch(/FrameAuthenticationFailed: frame 5 failed authentication/);
    }
    expect(existsSync(join(dir, "bad.bin"))).toBe(false);
    expect(readFileSync(join(dir, "keep.bin"), "utf8")).toBe("previous content"); // an existing OUT is untouched
    const truncated = await cli(["decrypt-file", "-", join(dir, "cut.bin")], { input: m.subarray(0, last.start) });
    expect(truncated.err).toMatch(/Truncated/);
    expect(existsSync(join(dir, "cut.bin"))).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  it("reports clear errors: missing input, unknown key, not an envelope file", async () => {
    const missing = await cli(["encrypt-file", join(dir, "nope"), join(dir, "x"), "--key-id", keyId]);
    expect(missing).toMatchObject({ code: 255, err: expect.stringContaining("ENOENT") });
    writeFileSync(join(dir, "plain.txt"), "hello");
    const badKey = await cli(["encrypt-file", join(dir, "plain.txt"), join(dir, "x"), "--key-id", "4a4b2c6e-0000-4000-8000-000000000000"]);
    expect(badKey).toMatchObject({ code: 254, err: expect.stringContaining("An error occurred (NotFoundException) when calling the GenerateDataKey operation") });
    const notEnvelope = await cli(["decrypt-file", join(dir, "plain.txt"), join(dir, "y")]);
    expect(notEnvelope).toMatchObject({ code: 255, err: expect.stringContaining("MalformedMessage") });
    expect(existsSync(join(dir, "x")) || existsSync(join(dir, "y"))).toBe(false);
    expect((await cli(["encrypt-file", join(dir, "plain.txt"), join(dir, "x")])).code).toBe(252); // --key-id is mandatory
    expect(leftovers()).toEqual([]);
  });
});

describe("p11kms env encrypt / exec --decrypt-env", () => {
  const printEnv = ["-e", "process.stdout.write(JSON.stringify({ db: process.env.DB_PASSWORD, api: process.env.API_TOKEN, plain: process.env.PLAIN }))"];

  it("encrypts values bound to their names and decrypts them into the child's environment", async () => {
    const a = await cli(["env", "encrypt", "DB_PASSWORD=hunter2", "--key-id", keyId]);
    expect(a.code).toBe(0);
    const line = a.out.toString().trim();
    expect(line).toMatch(/^DB_PASSWORD=p11kms-env:v1:[A-Za-z0-9+/=]+$/);
    expect(line).not.toContain("hunter2");
    const b = await cli(["env", "encrypt", "API_TOKEN", "--key-id", keyId], { input: Buffer.from("tok-from-stdin") });
    const env = Object.fromEntries([line, b.out.toString().trim()].map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
    const r = await cli(["exec", "--decrypt-env", "--", process.execPath, ...printEnv], { env: { ...env, PLAIN: "as is" } });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out.toString())).toEqual({ db: "hunter2", api: "tok-from-stdin", plain: "as is" });
  });

  it("refuses a value moved to another variable, naming the variable only", async () => {
    const a = (await cli(["env", "encrypt", "DB_PASSWORD=hunter2", "--key-id", keyId])).out.toString().trim();
    const value = a.slice(a.indexOf("=") + 1);
    const r = await cli(["exec", "--decrypt-env", "--", process.execPath, ...printEnv], { env: { API_TOKEN: value } });
    expect(r.code).toBe(255);
    expect(r.err).toMatch(/cannot decrypt environment variable API_TOKEN: .*does not contain "p11kms:env-var"/);
    expect(r.err).not.toContain("hunter2");
    expect(r.out.length).toBe(0); // the command never ran
  });

  it("forwards the exit code and signals of the command", async () => {
    expect((await cli(["exec", "--", process.execPath, "-e", "process.exit(7)"])).code).toBe(7);
    const child = spawn(process.execPath, [CLI, "--endpoint", d.endpoint, "exec", "--decrypt-env", "--", process.execPath, "-e",
      "process.on('SIGTERM', () => { process.stdout.write('got SIGTERM'); process.exit(3); }); process.stdout.write('ready'); setInterval(() => {}, 1000);"]);
    let out = "";
    await new Promise<void>((resolve) => child.stdout.on("data", (b: Buffer) => ((out += b.toString()), out.includes("ready") && resolve())));
    child.kill("SIGTERM");
    const code = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
    expect(out).toContain("got SIGTERM");
    expect(code).toBe(3);
    const killed = await cli(["exec", "--", process.execPath, "-e", "process.kill(process.pid, 'SIGKILL')"]);
    expect(killed.code).toBe(-1); // ended by the same signal (close reports code null)
    expect((await cli(["exec", "--", "/no/such/command"])).code).toBe(127);
  });
});
