import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DaemonHandle, REPO, startDaemon } from "../helpers/daemon.js";

/**
 * @p11kms/client as a new user gets it: `npm pack` of packages/client, installed into an empty directory,
 * then a program there (plain ESM, and TypeScript against the shipped declarations) talking to a real daemon.
 * Proves the published client depends on nothing of the server: no native modules, no server files.
 */
const run = promisify(execFile);
const CLIENT_DIR = join(REPO, "packages/client");
/** Packages of the daemon that must never reach a client's node_modules. */
const SERVER_ONLY = ["pkcs11js", "better-sqlite3", "pino", "prom-client", "zod", "commander", "yaml", "@smithy/signature-v4", "p11kms"];

let d: DaemonHandle;
let app: string;
let installedBytes = 0;

beforeAll(async () => {
  app = mkdtempSync(join(tmpdir(), "p11kms-client-pkg-"));
  const [daemon, tarball] = await Promise.all([
    startDaemon(),
    run("npm", ["pack", "--pack-destination", app, "--json"], { cwd: CLIENT_DIR }).then(
      ({ stdout }) => join(app, (JSON.parse(stdout) as { filename: string }[])[0]!.filename),
    ),
  ]);
  d = daemon;
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "client-app", private: true, type: "module" }));
  // --prefer-offline: the packages are in npm's cache after the project's own `npm ci`; the registry otherwise.
  await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", tarball], { cwd: app, timeout: 240_000 });
  installedBytes = du(join(app, "node_modules"));
}, 300_000);

afterAll(async () => {
  await d?.stop();
  d?.token.remove();
  if (app) rmSync(app, { recursive: true, force: true });
});

describe("@p11kms/client installed from npm pack into an empty directory", () => {
  it("pulls grpc-js and little else: none of the daemon's dependencies, no native build", () => {
    const top = installedPackages(join(app, "node_modules"));
    for (const name of SERVER_ONLY) expect(top).not.toContain(name);
    expect(top).toContain("@grpc/grpc-js");
    expect(top).toContain("@p11kms/client");
    expect(findFiles(join(app, "node_modules"), (f) => f.endsWith(".node"))).toEqual([]);
    console.log(`@p11kms/client installed: ${top.length} packages, ${(installedBytes / 1e6).toFixed(1)} MB in node_modules`);
    expect(installedBytes).toBeLessThan(25e6);
  });

  it("ships only its build: JavaScript and declarations, no sources, no server files", () => {
    const files = findFiles(join(app, "node_modules/@p11kms/client"), () => true).map((f) => f.slice(f.indexOf("@p11kms/client/") + 15));
    expect(files).toContain("dist/index.js");
    expect(files).toContain("dist/index.d.ts");
    expect(files).toContain("dist/contract.js");
    expect(files.filter((f) => !/^(dist\/.*\.(js|d\.ts)|package\.json|README\.md)$/.test(f))).toEqual([]);
  });

  it("a program using it makes typed calls, envelope-encrypts, and sees AWS exception names", async () => {
    writeFileSync(
      join(app, "main.mjs"),
      `import { Envelope, KmsClientError, P11KmsClient } from "@p11kms/client";
const kms = new P11KmsClient({ endpoint: process.argv[2] });
const key = (await kms.createKey({ description: "from the packed client" })).keyMetadata.arn;
const enc = await kms.encrypt({ keyId: key, plaintext: Buffer.from("packed"), encryptionContext: { app: "pkg" } });
const dec = await kms.decrypt({ ciphertextBlob: enc.ciphertextBlob, encryptionContext: { app: "pkg" } });
const envelope = new Envelope({ kms, keyIds: [key] });
const data = Buffer.alloc(200_000, 7);
const message = await envelope.encrypt(data, { context: { file: "x" } });
const opened = await envelope.decrypt(message, { expectedContext: { file: "x" } });
const err = await kms.decrypt({ ciphertextBlob: enc.ciphertextBlob, encryptionContext: { app: "other" } }).catch((e) => e);
kms.close();
console.log(JSON.stringify({ plaintext: dec.plaintext.toString(), envelopeOk: opened.plaintext.equals(data), errType: err instanceof KmsClientError ? err.type : String(err) }));
`,
    );
    const { stdout } = await run(process.execPath, ["main.mjs", d.endpoint], { cwd: app, timeout: 60_000 });
    expect(JSON.parse(stdout)).toEqual({ plaintext: "packed", envelopeOk: true, errType: "InvalidCiphertextException" });
  });

  it("type-checks a TypeScript program against the shipped declarations", async () => {
    writeFileSync(
      join(app, "main.ts"),
      `import { type KeyMetadata, P11KmsClient, encodeEncryptionContext } from "@p11kms/client";
const kms = new P11KmsClient({ endpoint: "127.0.0.1:50051" });
const m: Promise<{ keyMetadata: KeyMetadata }> = kms.describeKey({ keyId: "alias/x" });
const bytes: Buffer = encodeEncryptionContext({ a: "b" });
void m; void bytes;
// @ts-expect-error: the declarations are precise enough to refuse a wrong request member.
void kms.encrypt({ keyId: "k", plaintext: "not bytes" });
`,
    );
    const tsc = join(REPO, "node_modules/typescript/bin/tsc");
    const args = ["--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022"];
    args.push("--types", "node", "--typeRoots", join(REPO, "node_modules/@types"), "main.ts");
    await expect(run(process.execPath, [tsc, ...args], { cwd: app })).resolves.toBeDefined();
  });
});

function installedPackages(nodeModules: string): string[] {
  const names: string[] = [];
  for (const entry of readdirSync(nodeModules)) {
    if (entry.startsWith(".")) continue;
    if (entry.startsWith("@")) for (const sub of readdirSync(join(nodeModules, entry))) names.push(`${entry}/${sub}`);
    else names.push(entry);
  }
  return names;
}

function findFiles(dir: string, want: (path: string) => boolean): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...findFiles(p, want));
    else if (want(p)) out.push(p);
  }
  return out;
}

function du(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    n += e.isDirectory() ? du(p) : statSync(p).size;
  }
  return n;
}
