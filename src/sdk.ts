/**
 * `import ... from "p11kms"` keeps working for code written against p11kms 0.1, when the client SDK lived in
 * this package: it is now @p11kms/client (packages/client), which a client should depend on directly — it
 * installs grpc-js and little else, none of the daemon's native modules.
 */
export * from "@p11kms/client";
