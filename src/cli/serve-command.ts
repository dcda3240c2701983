import { type Command, Option } from "commander";

/** `p11kms serve`: shared by the full CLI (main.ts) and the daemon's short path (entry.ts). */
export function addServeCommand(program: Command): void {
  program
    .command("serve")
    .description("run the daemon")
    .addOption(new Option("--config <path>", "configuration file (YAML or JSON)").env("P11KMS_CONFIG").makeOptionMandatory())
    .action(async (o: { config: string }) => {
      const { serve } = await import("../main.js");
      await serve(o.config);
    });
}

/** Parses the command line and runs the command; exit codes as the AWS CLI: 0 ok, 252 bad usage, 255 anything else. */
export async function runCli(program: Command): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (typeof e.code === "string" && e.code.startsWith("commander.")) {
      process.exitCode = e.code === "commander.helpDisplayed" || e.code === "commander.version" ? 0 : 252;
    } else {
      process.stderr.write(`${e.message ?? String(err)}\n`);
      process.exitCode = 255;
    }
  }
}
