/**
 * The subset of RFC 7512 PKCS#11 URIs that p11kms needs to find a token:
 *
 *   pkcs11:token=<label>?module-path=<library>&pin-source=file:<path>
 *
 * Path attributes are separated by ';', query attributes by '&', values are percent-decoded. pin-source
 * takes `file:<path>` (RFC 7512) or `env:<VARIABLE>` (a p11kms extension); pin-value is refused so that a PIN
 * never sits in a configuration file.
 */
export interface Pkcs11Uri {
  readonly token: string;
  readonly modulePath: string;
  readonly pinSource: { readonly kind: "file"; readonly path: string } | { readonly kind: "env"; readonly name: string };
}

const PATH_ATTRS = new Set(["token", "manufacturer", "serial", "model", "library-manufacturer", "library-description", "library-version", "slot-description", "slot-manufacturer", "slot-id"]);
const QUERY_ATTRS = new Set(["module-path", "module-name", "pin-source", "pin-value"]);

export function parsePkcs11Uri(uri: string): Pkcs11Uri {
  if (!uri.startsWith("pkcs11:")) throw new Error("a PKCS#11 URI starts with 'pkcs11:'");
  const rest = uri.slice("pkcs11:".length);
  const q = rest.indexOf("?");
  const path = parseAttrs(q < 0 ? rest : rest.slice(0, q), ";", PATH_ATTRS);
  const query = parseAttrs(q < 0 ? "" : rest.slice(q + 1), "&", QUERY_ATTRS);

  const token = path.get("token");
  if (!token) throw new Error("the URI must name the token: token=<label>");
  for (const k of path.keys()) {
    if (k !== "token") throw new Error(`path attribute '${k}' is not supported; tokens are selected by label`);
  }
  if (query.has("pin-value")) throw new Error("pin-value is not accepted: use pin-source=file:<path> or env:<VAR>");
  const modulePath = query.get("module-path");
  if (!modulePath) throw new Error("the URI must give module-path=<path to the PKCS#11 library>");
  const src = query.get("pin-source");
  if (!src) throw new Error("the URI must give pin-source=file:<path> or pin-source=env:<VARIABLE>");
  let pinSource: Pkcs11Uri["pinSource"];
  if (src.startsWith("file:")) pinSource = { kind: "file", path: src.slice(5).replace(/^\/\/(?=\/)/, "") };
  else if (src.startsWith("env:")) pinSource = { kind: "env", name: src.slice(4) };
  else throw new Error("pin-source must be file:<path> or env:<VARIABLE>");
  if ((pinSource.kind === "file" ? pinSource.path : pinSource.name) === "") throw new Error("pin-source is empty");
  return { token, modulePath, pinSource };
}

function parseAttrs(text: string, sep: string, known: Set<string>): Map<string, string> {
  const out = new Map<string, string>();
  if (text === "") return out;
  for (const part of text.split(sep)) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new Error(`malformed attribute '${part}'`);
    const name = part.slice(0, eq);
    if (!known.has(name)) throw new Error(`unknown attribute '${name}'`);
    if (out.has(name)) throw new Error(`attribute '${name}' is repeated`);
    let value: string;
    try {
      value = decodeURIComponent(part.slice(eq + 1));
    } catch {
      throw new Error(`attribute '${name}' has a malformed percent-encoding`);
    }
    out.set(name, value);
  }
  return out;
}
