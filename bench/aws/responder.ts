import { createServer } from "node:http";

/**
 * The HTTP ceiling: a node:http keep-alive server that reads each request body and answers a fixed JSON
 * body the size of an Encrypt 4 KB response, with no other work. Port from argv[2] (0 = pick); prints it.
 */
const body = JSON.stringify({ CiphertextBlob: "A".repeat(5528), KeyId: `arn:aws:kms:us-east-1:111122223333:key/${"0".repeat(36)}`, EncryptionAlgorithm: "SYMMETRIC_DEFAULT" });
const server = createServer((req, res) => {
  req.on("data", () => undefined);
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/x-amz-json-1.1", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 5_000;
server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  const addr = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof addr === "object" && addr ? addr.port : 0 })}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
