import { spawn } from "node:child_process";
import { constants } from "node:os";
import { type Envelope, EnvelopeError } from "@p11kms/client";

/** Marks an environment value as a p11kms-encrypted secret: the prefix, then a base64 envelope message. */
export const ENV_PREFIX = "p11kms-env:v1:";
/**
 * The encryption-context key that binds a secret to its variable's name, so a value encrypted for
 * DB_PASSWORD cannot be moved into another variable (say, one the application logs) and still decrypt.
 */
export const ENV_NAME_CONTEXT_KEY = "p11kms:env-var";

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `NAME=value` → `NAME=p11kms-env:v1:...` (the value is never printed or logged). */
export async function encryptVariable(envelope: Envelope, name: string, value: Buffer, context: Record<string, string>): Promise<string> {
  if (!NAME.test(name)) throw new EnvelopeError("InvalidInput", `'${name}' is not a valid environment variable name`);
  const message = await envelope.encrypt(value, { context: { ...context, [ENV_NAME_CONTEXT_KEY]: name } });
  return `${name}=${ENV_PREFIX}${message.toString("base64")}`;
}

/**
 * The environment with every `p11kms-env:v1:` value decrypted. Each must carry its own variable's name in
 * its encryption context. All or nothing: one failure names the variable (never the value) and throws.
 */
export async function decryptEnvironment(envelope: Envelope, env: NodeJS.ProcessEnv): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    if (!value.startsWith(ENV_PREFIX)) {
      out[name] = value;
      continue;
    }
    try {
      const { plaintext } = await envelope.decrypt(Buffer.from(value.slice(ENV_PREFIX.length), "base64"), {
        expectedContext: { [ENV_NAME_CONTEXT_KEY]: name },
      });
      out[name] = plaintext.toString("utf8");
      plaintext.fill(0);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new EnvelopeError("InvalidInput", `cannot decrypt environment variable ${name}: ${reason}`, { cause: err });
    }
  }
  return out;
}

const FORWARDED: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH"];

/**
 * Runs `command` with `env` and mirrors it: signals this process receives are forwarded to the child, and
 * this process ends the way the child did (same exit code, or the same signal). Node cannot exec(2) in
 * place, so the CLI stays as a thin parent. Resolves never; a command that cannot start exits 127/126.
 */
export function runChild(command: string, args: string[], env: Record<string, string>): Promise<never> {
  return new Promise<never>(() => {
    const child = spawn(command, args, { env, stdio: "inherit" });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    for (const s of FORWARDED) process.on(s, forward);
    child.once("error", (err: NodeJS.ErrnoException) => {
      process.stderr.write(`p11kms exec: ${command}: ${err.code === "ENOENT" ? "command not found" : err.message}\n`);
      process.exit(err.code === "ENOENT" ? 127 : 126);
    });
    child.once("exit", (code, signal) => {
      for (const s of FORWARDED) process.off(s, forward);
      if (signal) {
        // Die of the same signal so a shell sees 128+n; fall back to that code if it is caught or ignored.
        process.kill(process.pid, signal);
        setTimeout(() => process.exit(128 + (constants.signals[signal] ?? 0)), 100);
        return;
      }
      process.exit(code ?? 1);
    });
  });
}
