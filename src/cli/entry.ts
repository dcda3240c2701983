/**
 * The `p11kms` executable. `p11kms serve` takes a short path that loads only the serve command: the full CLI
 * imports the gRPC client, the generated messages and ~40 commands' modules, which would delay the daemon's
 * start-up (docs/benchmarks.md). Everything else, `p11kms --help` included, is the full CLI (main.ts).
 */
if (process.argv[2] === "serve") {
  // The thread that opens the tokens boots while the configuration loads (src/hsm/runtime/prepared-open.ts).
  // The one import of src/hsm's inside from outside it, on purpose: hsm/index.js loads all of src/hsm
  // (~35 ms here against ~6 ms for this module), and the worker is start-up's critical path on a big token.
  (await import("../hsm/runtime/prepared-open.js")).StorePreparation.spawn();
  const { Command } = await import("commander");
  const { addServeCommand, runCli } = await import("./serve-command.js");
  const program = new Command("p11kms").exitOverride().configureOutput({ outputError: (str, write) => write(str) });
  addServeCommand(program);
  await runCli(program);
} else {
  await import("./main.js");
}
export {};
