import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A PKI made with the openssl CLI in a temp dir: file paths and PEM contents. */
export interface TestPki {
  readonly dir: string;
  /** The CA that issues client certificates (and the server certificate). */
  readonly caFile: string;
  readonly serverCert: string;
  readonly serverKey: string;
  /** Issues a client certificate; returns PEM contents. */
  client(name: string, opts?: { uri?: string; expired?: boolean; otherCa?: boolean }): { cert: Buffer; key: Buffer };
  readonly ca: Buffer;
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

function makeCa(dir: string, name: string): void {
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.pem`, "-subj", `/CN=${name}`, "-days", "2"], dir);
}

function issue(dir: string, ca: string, name: string, subject: string, ext: string, days: string): void {
  openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject], dir);
  writeFileSync(join(dir, `${name}.ext`), ext);
  // -days -1 makes a certificate that expired before it was issued: "expired" without waiting.
  openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}.key`, "-CAcreateserial", "-out", `${name}.pem`, "-days", days, "-extfile", `${name}.ext`], dir);
}

/** A CA, a server certificate for 127.0.0.1/localhost, and a factory of client certificates. */
export function createTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "p11kms-pki-"));
  makeCa(dir, "ca");
  makeCa(dir, "rogue-ca");
  issue(dir, "ca", "server", "/CN=localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n", "2");
  return {
    dir,
    caFile: join(dir, "ca.pem"),
    serverCert: join(dir, "server.pem"),
    serverKey: join(dir, "server.key"),
    ca: readFileSync(join(dir, "ca.pem")),
    client(name, opts = {}) {
      const ext = `extendedKeyUsage=clientAuth\n${opts.uri ? `subjectAltName=URI:${opts.uri}\n` : ""}`;
      issue(dir, opts.otherCa ? "rogue-ca" : "ca", name, `/CN=${name}`, ext, opts.expired ? "-1" : "2");
      return { cert: readFileSync(join(dir, `${name}.pem`)), key: readFileSync(join(dir, `${name}.key`)) };
    },
  };
}
