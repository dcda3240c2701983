import { readFileSync } from "node:fs";
import { type Command, Option } from "commander";
import { Envelope, EnvelopeError, KmsClientError, P11KmsClient } from "@p11kms/client";
import { collect, parseContext } from "./args.js";
import { decryptFile, encryptFile } from "./envelope-files.js";
import { decryptEnvironment, encryptVariable, runChild } from "./env-secrets.js";

interface Globals {
  endpoint: string;
  cliReadTimeout: number;
}
interface EnvelopeFlags {
  keyId?: string[];
  context?: Record<string, string>;
}

/**
 * Registers the envelope-encryption commands (encrypt-file, decrypt-file, env encrypt, exec) on the p11kms
 * program. Errors: 254 when the service refused a call (with the AWS exception name), 255 for anything
 * else (a tampered or foreign file, I/O), with one clear line on stderr.
 */
export function registerEnvelopeCommands(program: Command): void {
  const keyOption = () => new Option("--key-id <id>", "KMS key id or ARN (repeatable: every key can decrypt)").argParser(collect);
  const contextOption = (help: string) => new Option("--context <k=v>", help).argParser((v: string, prev: Record<string, string> = {}) => ({ ...prev, ...parseContext(v) }));

  program
    .command("encrypt-file")
    .description("envelope-encrypt a file of any size (IN/OUT may be - for stdin/stdout)")
    .argument("<in>")
    .argument("<out>")
    .addOption(keyOption().makeOptionMandatory())
    .addOption(contextOption("encryption context pair, repeatable (stored in clear, authenticated)"))
    .action(action("encrypt-file", (env, [input, output], o) => encryptFile({ envelope: env, input: input!, output: output!, context: o.context ?? {} })));

  program
    .command("decrypt-file")
    .description("decrypt an envelope-encrypted file; OUT appears only if the whole file verified")
    .argument("<in>")
    .argument("<out>")
    .addOption(keyOption().default(undefined, "any key the file names"))
    .addOption(contextOption("pair the file's encryption context must contain, repeatable"))
    .action(action("decrypt-file", (env, [input, output], o) => decryptFile({ envelope: env, input: input!, output: output!, context: o.context ?? {} })));

  program
    .command("env")
    .description("secrets in environment variables")
    .command("encrypt")
    .description("print NAME=<encrypted value>; give NAME alone to read the value from stdin (keeps it out of shell history)")
    .argument("<assignment>", "NAME=value or NAME")
    .addOption(keyOption().makeOptionMandatory())
    .addOption(contextOption("extra encryption context pair, repeatable"))
    .action(
      action("env encrypt", async (env, [assignment], o) => {
        const eq = assignment!.indexOf("=");
        const name = eq < 0 ? assignment! : assignment!.slice(0, eq);
        const value = eq < 0 ? readFileSync(0) : Buffer.from(assignment!.slice(eq + 1), "utf8");
        process.stdout.write(`${await encryptVariable(env, name, value, o.context ?? {})}\n`);
      }),
    );

  program
    .command("exec")
    .description("run a command with p11kms-encrypted environment variables decrypted")
    .option("--decrypt-env", "decrypt every p11kms-env:v1: variable into the command's environment")
    .addOption(keyOption().default(undefined, "any key the values name"))
    .argument("<command>")
    .argument("[args...]")
    .action(
      action("exec", async (env, [command, args], o: EnvelopeFlags & { decryptEnv?: boolean }) => {
        const childEnv = o.decryptEnv ? await decryptEnvironment(env, process.env) : (process.env as Record<string, string>);
        await runChild(command as string, (args as unknown as string[]) ?? [], childEnv);
      }),
    );

  function action<O extends EnvelopeFlags>(name: string, run: (envelope: Envelope, args: (string | undefined)[], o: O) => Promise<void>) {
    return async (...params: unknown[]) => {
      const cmd = params[params.length - 1] as Command;
      const o = cmd.opts<O>();
      const g = cmd.optsWithGlobals<Globals>();
      let kms: P11KmsClient | undefined;
      try {
        kms = new P11KmsClient({ endpoint: g.endpoint, timeoutMs: g.cliReadTimeout * 1000 });
        const envelope = new Envelope({ kms, keyIds: o.keyId ?? [], discovery: !o.keyId?.length });
        await run(envelope, params.slice(0, -2) as (string | undefined)[], o);
      } catch (err) {
        process.exitCode = report(name, err);
      } finally {
        kms?.close();
      }
    };
  }
}

function report(command: string, err: unknown): number {
  if (err instanceof KmsClientError) {
    process.stderr.write(`\nAn error occurred (${err.type}) when calling the ${err.operation} operation: ${err.message.replace(/^\w+: \w+: /, "")}\n`);
    return 254;
  }
  const e = err as NodeJS.ErrnoException;
  const what = err instanceof EnvelopeError ? `${err.code}: ${err.message}` : e.code && e.path ? `${e.code}: ${e.path}` : (e.message ?? String(err));
  process.stderr.write(`p11kms ${command}: ${what}\n`);
  return 255;
}
