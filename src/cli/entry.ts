/**
 * The `p11kms` executable. `p11kms serve` takes a short path that loads only the serve command: the full CLI
 * imports the gRPC client, the generated messages and ~40 commands' modules, which would delay the daemon's
 * start-up (docs/benchmarks.md). Everything else, `p11kms --help` included, is the full CLI (main.ts).
 */
if (process.argv[2] === "serve") {
  // The thread that opens the tokens boots while the configuration loads (src/hsm/prepared-open.ts).
  (await import("../hsm/prepared-open.js")).StorePreparation.spawn();
  const { Command } = await import("commander");
  const { addServeCommand, runCli } = await import("./serve-command.js");
  const program = new Command("p11kms").exitOverride().configureOutput({ outputError: (str, write) => write(str) });
  addServeCommand(program);
  await runCli(program);
} else {
  await import("./main.js");
}
export {};
