import { ConfigError, loadConfig } from "./config/load.js";
import { startDaemon } from "./daemon.js";
import { createLogger } from "./observability/logger.js";

/**
 * The composition root: configuration → daemon → signals. `p11kms serve` calls this. Exits 78 (EX_CONFIG)
 * on a configuration error and 1 on any other start-up failure, with the reason on stderr/in the log.
 */
export async function serve(configPath: string): Promise<void> {
  let config;
  try {
    config = loadConfig(configPath);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78);
    }
    throw err;
  }
  const log = createLogger(config.log.level);
  let daemon;
  try {
    daemon = await startDaemon(config, log);
  } catch (err) {
    log.fatal({ err }, "p11kms failed to start");
    process.exit(1);
  }
  const running = daemon;
  const onSignal = (signal: NodeJS.Signals) => {
    log.info({ signal }, "shutting down");
    running.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
}
