import { readdirSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * The import rules of docs/architecture.md, read from the source: each folder imports only what its
 * paragraph there allows. A new import that crosses a line fails here with the file and the specifier.
 */
const REPO = resolve(import.meta.dirname, "../..");
const SRC = join(REPO, "src");
const CLIENT = join(REPO, "packages/client/src");

interface Edge {
  readonly from: string; // repo-relative file
  readonly spec: string; // as written
  readonly target?: string; // repo-relative file, for relative specifiers
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === "gen" ? [] : tsFiles(p);
    return e.name.endsWith(".ts") ? [p] : [];
  });
}

// Static imports and re-exports (`from "x"`, multi-line included), dynamic `import("x")`, side-effect `import "x"`.
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)"([^"]+)"/gm;

function edges(dir: string): Edge[] {
  return tsFiles(dir).flatMap((file) => {
    const text = readFileSync(file, "utf8");
    return [...text.matchAll(SPECIFIER)].map((m) => {
      const spec = m[1]!;
      const from = relative(REPO, file);
      return spec.startsWith(".") ? { from, spec, target: relative(REPO, resolve(dirname(file), spec)) } : { from, spec };
    });
  });
}

const server = edges(SRC);
const client = edges(CLIENT);
const inside = (path: string | undefined, folder: string) => path !== undefined && (path + "/").startsWith(folder + "/");
const show = (list: Edge[]) => list.map((e) => `${e.from} → ${e.spec}`);

describe("import rules (docs/architecture.md)", () => {
  it("the scan sees the code base (guards the rules below against a regexp that matches nothing)", () => {
    expect(server.length).toBeGreaterThan(500);
    expect(client.length).toBeGreaterThan(40);
    expect(server.some((e) => e.from === "src/daemon/stores.ts" && e.spec === "../hsm/index.js")).toBe(true);
  });

  it("src/kms, the domain, imports only itself and the wire contract", () => {
    const bad = server.filter((e) => inside(e.from, "src/kms") && (e.target ? !inside(e.target, "src/kms") : e.spec.startsWith("@p11kms/") && e.spec !== "@p11kms/client/contract"));
    expect(show(bad)).toEqual([]);
  });

  it("code outside src/hsm reaches it through hsm/index.ts only (the start-up worker's early spawn excepted)", () => {
    const allowed = new Set(["src/hsm/index.js", "src/hsm/runtime/prepared-open.js@src/cli/entry.ts"]);
    const bad = server.filter(
      (e) => !inside(e.from, "src/hsm") && inside(e.target, "src/hsm") && !allowed.has(e.target!) && !allowed.has(`${e.target}@${e.from}`),
    );
    expect(show(bad)).toEqual([]);
  });

  it("inside src/hsm: objects/ imports neither runtime/ nor ops/; runtime/ does not import ops/; nothing imports the face", () => {
    const bad = server.filter(
      (e) =>
        (inside(e.from, "src/hsm/objects") && (inside(e.target, "src/hsm/runtime") || inside(e.target, "src/hsm/ops"))) ||
        (inside(e.from, "src/hsm/runtime") && inside(e.target, "src/hsm/ops")) ||
        (inside(e.from, "src/hsm") && (e.target === "src/hsm/index.js" || (e.target === "src/hsm/pkcs11-key-store.js" && e.from !== "src/hsm/index.ts"))),
    );
    expect(show(bad)).toEqual([]);
  });

  it("src/observability imports only itself and the domain's ports: nothing of hsm, store, api, audit", () => {
    const bad = server.filter((e) => inside(e.from, "src/observability") && e.target && !inside(e.target, "src/observability") && !inside(e.target, "src/kms"));
    expect(show(bad)).toEqual([]);
  });

  it("the server reaches the client package by its name, never by a path into packages/", () => {
    expect(show(server.filter((e) => e.spec.includes("packages/")))).toEqual([]);
  });

  it("@p11kms/client imports nothing of the server: only itself, node: built-ins and its declared dependencies", () => {
    const pkg = JSON.parse(readFileSync(join(REPO, "packages/client/package.json"), "utf8")) as { dependencies: Record<string, string> };
    const deps = Object.keys(pkg.dependencies);
    const ok = (e: Edge) =>
      e.target
        ? inside(e.target, "packages/client/src")
        : e.spec.startsWith("node:") || builtinModules.includes(e.spec) || deps.some((d) => e.spec === d || e.spec.startsWith(d + "/"));
    expect(show(client.filter((e) => !ok(e)))).toEqual([]);
  });

  it("inside the client package the envelope SDK may use the client, not the other way round", () => {
    const bad = client.filter((e) => inside(e.from, "packages/client/src/client") && inside(e.target, "packages/client/src/envelope"));
    expect(show(bad)).toEqual([]);
  });
});
