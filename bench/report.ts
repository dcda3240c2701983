import type { RawResult } from "./children/raw-pkcs11.js";
import type { LoadRow } from "./lib/load-scenario.js";

/** One line of the results table; latencies in milliseconds. */
export interface TableRow {
  readonly scenario: string;
  readonly inFlight: string;
  readonly requests: number;
  readonly opsPerSec: number;
  readonly p50: number;
  readonly p99: number;
  readonly verified: string;
  /** Share of the machine used by other processes meanwhile (0..1): high values mean low figures. */
  readonly otherCpu: number;
}

export interface Ratio {
  readonly name: string;
  readonly value: number;
  /** "ops/s": an absolute rate, for throughput aims. */
  readonly unit: "ratio" | "ms" | "ops/s";
  /** A goal, when there is one: value ≥ min or value ≤ max (in `unit`). */
  readonly goal?: { readonly min?: number; readonly max?: number };
}

export function loadRow(r: LoadRow): TableRow {
  const lat = r.result.latency;
  if (!lat) throw new Error(`${r.name}: no latencies recorded`);
  return {
    scenario: r.name,
    inFlight: r.inFlight,
    requests: r.result.done,
    opsPerSec: r.result.reqPerSec,
    p50: lat.p50,
    p99: lat.p99,
    verified: r.verified,
    otherCpu: r.otherCpu,
  };
}

const RAW_NAMES: Record<RawResult["mode"], string> = {
  gcm: "pkcs11js AES-GCM 4 KB (sync loop)",
  "rng+gcm": "pkcs11js RNG(12)+AES-GCM 4 KB (sync loop)",
  keystore: "Pkcs11KeyStore RNG+AES-GCM 4 KB (await loop)",
  "gcm-session": "pkcs11js AES-GCM 4 KB, session-object key copy",
  "ecdsa-sign": "pkcs11js ECDSA P-256 sign (sync loop)",
  "ecdsa-sign-session": "pkcs11js ECDSA P-256 sign, session-object key copy",
  "ecdsa-sign-async": "pkcs11js ECDSA P-256 sign (C_SignAsync)",
  "pss-sign": "pkcs11js RSA-2048 PSS sign (sync loop)",
  "pss-sign-async": "pkcs11js RSA-2048 PSS sign (C_SignAsync)",
};

export function rawRow(r: RawResult & { otherCpu: number }): TableRow {
  return {
    scenario: RAW_NAMES[r.mode],
    inFlight: String(r.inFlight),
    requests: r.ops,
    opsPerSec: r.opsPerSec,
    p50: r.p50,
    p99: r.p99,
    verified: "in-process",
    otherCpu: r.otherCpu,
  };
}

export function meetsGoal(r: Ratio): boolean | undefined {
  if (!r.goal) return undefined;
  return (r.goal.min === undefined || r.value >= r.goal.min) && (r.goal.max === undefined || r.value <= r.goal.max);
}

/** The plain-text report: the table, then the ratios with their goals. Markdown-compatible. */
export function formatReport(rows: readonly TableRow[], ratios: readonly Ratio[]): string {
  const header = ["scenario", "in flight", "requests", "ops/s", "p50 ms", "p99 ms", "verified", "other CPU"];
  const body = rows.map((r) => [
    r.scenario,
    r.inFlight,
    String(r.requests),
    fmtInt(r.opsPerSec),
    fmtMs(r.p50),
    fmtMs(r.p99),
    r.verified,
    `${Math.round(r.otherCpu * 100)}%`,
  ]);
  const ratioRows = ratios.map((r) => {
    const ok = meetsGoal(r);
    const unit = r.unit === "ratio" ? "" : ` ${r.unit}`;
    const bound = (n: number) => (r.unit === "ops/s" ? fmtInt(n) : String(n));
    const goal = r.goal ? `${r.goal.min !== undefined ? `≥ ${bound(r.goal.min)}` : `≤ ${bound(r.goal.max!)}`}${unit}` : "";
    const value = r.unit === "ms" ? `${fmtMs(r.value)} ms` : r.unit === "ops/s" ? `${fmtInt(r.value)} ops/s` : r.value.toFixed(2);
    return [r.name, value, goal, ok === undefined ? "" : ok ? "met" : "NOT MET"];
  });
  const table = markdownTable(header, body, [false, false, true, true, true, true, false, true]);
  return `${table}\n\n${markdownTable(["ratio", "value", "goal", ""], ratioRows, [false, true, false, false])}\n`;
}

function markdownTable(header: string[], rows: string[][], rightAlign: boolean[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const pad = (c: string, i: number) => (rightAlign[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!));
  const line = (cells: string[]) => `| ${cells.map(pad).join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (rightAlign[i] ? `${"-".repeat(w + 1)}:` : "-".repeat(w + 2))).join("|")}|`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

function fmtMs(ms: number): string {
  return ms < 1 ? ms.toFixed(3) : ms.toFixed(2);
}
