import { ConfigError, loadConfig } from "./config/load.js";
import type { Config } from "./config/schema.js";
import { parsePkcs11Uri } from "./config/pkcs11-uri.js";
import { readPin } from "./config/pin.js";
import { type PrepareRequest, StorePreparation } from "./hsm/index.js";
import { createLogger } from "./observability/logger.js";
import { holdStateLocks } from "./daemon/state-locks.js";
import { ProcessSignals } from "./signals.js";

/**
 * The composition root: configuration → daemon → signals. `p11kms serve` calls this. Exits 78 (EX_CONFIG)
 * on a configuration error and 1 on any other start-up failure, with the reason on stderr/in the log —
 * among them a second daemon on state another one holds (daemon/state-locks.ts).
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
  // WARNING: first, before anything writes or the start-up worker touches a token: a second daemon on the
  // same database, audit directory or token is refused here, having changed nothing. The locks are held
  // until the process exits (through the whole shutdown) and released by the kernel, kill -9 included.
  try {
    holdStateLocks(config, log, { ...process.env, ...config.moduleEnvironment });
  } catch (err) {
    log.fatal({ err }, "p11kms failed to start");
    process.exit(1);
  }
  // Installed before anything starts, so no signal finds the process without its handlers (docs/operations.md).
  const signals = new ProcessSignals(log);
  // The key stores' tokens are opened in a worker thread while the rest of the daemon loads (start-up time:
  // docs/benchmarks.md); so the daemon's modules are imported only now.
  const prepared = prepareStores(config);
  let daemon;
  try {
    const { startDaemon } = await import("./daemon.js");
    daemon = await startDaemon(config, log, prepared);
  } catch (err) {
    log.fatal({ err }, "p11kms failed to start");
    process.exit(1);
  }
  signals.attach(daemon);
}

/**
 * Gives the start-up worker every key store whose URI and PIN can be read now. A store left out (or failing
 * in the worker) is opened the ordinary way, which reports any error. P11KMS_NO_PREPARE=1 leaves them all
 * out (for measuring the difference, or to rule the worker out when diagnosing a start-up problem).
 */
function prepareStores(config: Config & { baseDir: string }): StorePreparation {
  // The module reads its environment (SOFTHSM2_CONF…) at C_Initialize, which the worker makes.
  for (const [name, value] of Object.entries(config.moduleEnvironment)) process.env[name] = value;
  const requests: PrepareRequest[] = [];
  for (const ks of config.keyStores) {
    try {
      const uri = parsePkcs11Uri(ks.uri);
      requests.push({
        keyStoreId: ks.id,
        modulePath: uri.modulePath,
        tokenLabel: uri.token,
        pin: readPin(uri.pinSource, config.baseDir),
        rsaOaepSha256Fallback: ks.rsaOaepSha256Fallback,
      });
    } catch {
      // Opened (and its error reported) by the daemon.
    }
  }
  const preparation = StorePreparation.spawn(); // already booting if entry.ts started it
  preparation.prepare(process.env.P11KMS_NO_PREPARE === "1" ? [] : requests);
  return preparation;
}
