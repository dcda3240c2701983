import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { type Config, configSchema } from "./schema.js";

/** Environment variables that override single settings (documented in the README). */
const ENV_OVERRIDES: Record<string, { path: string[]; type: "string" | "number" | "boolean" }> = {
  P11KMS_REGION: { path: ["region"], type: "string" },
  P11KMS_ACCOUNT_ID: { path: ["accountId"], type: "string" },
  P11KMS_GRPC_LISTEN: { path: ["grpc", "listen"], type: "string" },
  P11KMS_AWS_LISTEN: { path: ["aws", "listen"], type: "string" },
  P11KMS_AWS_ENABLED: { path: ["aws", "enabled"], type: "boolean" },
  P11KMS_METRICS_LISTEN: { path: ["metrics", "listen"], type: "string" },
  P11KMS_METRICS_ENABLED: { path: ["metrics", "enabled"], type: "boolean" },
  P11KMS_SQLITE_PATH: { path: ["storage", "sqlitePath"], type: "string" },
  P11KMS_LOG_LEVEL: { path: ["log", "level"], type: "string" },
};

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/**
 * Reads a YAML or JSON file, applies P11KMS_* environment overrides, validates, and resolves relative
 * paths against the file's directory. Every problem is reported at once, with its path.
 */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config & { baseDir: string } {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(file, "utf8")) ?? {};
  } catch (err) {
    throw new ConfigError(`cannot read configuration ${file}: ${(err as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`configuration ${file} must be a mapping`);
  }
  const merged = structuredClone(raw) as Record<string, unknown>;
  const lines: string[] = [];
  for (const [name, spec] of Object.entries(ENV_OVERRIDES)) {
    const value = env[name];
    if (value === undefined || value === "") continue;
    try {
      setPath(merged, spec.path, coerce(value, spec.type));
    } catch (err) {
      lines.push(`  - ${name}: ${(err as Error).message}`);
    }
  }
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) lines.push(...parsed.error.issues.map((i) => `  - ${i.path.join(".") || "(root)"}: ${i.message}`));
  if (!parsed.success || lines.length > 0) {
    throw new ConfigError(`invalid configuration ${file}:\n${lines.join("\n")}`);
  }
  const baseDir = dirname(resolve(file));
  const config = parsed.data;
  return {
    ...config,
    baseDir,
    storage: { ...config.storage, sqlitePath: resolvePath(baseDir, config.storage.sqlitePath) },
    audit: { ...config.audit, file: resolvePath(baseDir, config.audit.file) },
    aws: {
      ...config.aws,
      accessKeyFiles: config.aws.accessKeyFiles.map((f) => resolvePath(baseDir, f)),
      tls: config.aws.tls && {
        certFile: resolvePath(baseDir, config.aws.tls.certFile),
        keyFile: resolvePath(baseDir, config.aws.tls.keyFile),
      },
    },
    grpc: {
      ...config.grpc,
      tls: config.grpc.tls && {
        ...config.grpc.tls,
        certFile: resolvePath(baseDir, config.grpc.tls.certFile),
        keyFile: resolvePath(baseDir, config.grpc.tls.keyFile),
        clientCaFile: resolvePath(baseDir, config.grpc.tls.clientCaFile),
      },
    },
  };
}

export function resolvePath(baseDir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

function coerce(value: string, type: "string" | "number" | "boolean"): unknown {
  if (type === "string") return value;
  if (type === "number") {
    const n = Number(value);
    if (!Number.isFinite(n)) throw new ConfigError("must be a number");
    return n;
  }
  if (value === "true" || value === "false") return value === "true";
  throw new ConfigError("must be true or false");
}

function setPath(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let cur = obj;
  for (const key of path.slice(0, -1)) {
    const next = cur[key];
    if (typeof next !== "object" || next === null) cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[path[path.length - 1]!] = value;
}
