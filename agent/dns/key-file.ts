/**
 * The TSIG secret as operators have it at hand: one line of base64 (a bare
 * secret, or dnssec-keygen's `.private` file with its `Key:` line) or the key
 * clause bind9's `tsig-keygen NAME` prints, which also names the key and its
 * algorithm. The content is a secret: no message here ever repeats it.
 */

export interface ParsedTsigSecret {
  secret: Buffer;
  name?: string;
  algorithm?: string;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function decodeBase64(text: string): Buffer | undefined {
  if (!BASE64.test(text) || text.length % 4 !== 0) return undefined;
  const secret = Buffer.from(text, 'base64');
  return secret.length > 0 ? secret : undefined;
}

/** dnssec-keygen's algorithm numbers for HMAC keys (`Algorithm: 163 (HMAC_SHA256)`). */
const KEYGEN_ALGORITHMS: Record<string, string> = { '163': 'hmac-sha256', '165': 'hmac-sha512' };

function fromKeyClause(text: string): ParsedTsigSecret | undefined {
  const clause = /^key\s+"?([A-Za-z0-9._-]+)"?\s*\{([^}]*)\}\s*;?$/.exec(text);
  if (!clause) return undefined;
  const body = clause[2] as string;
  const algorithm = /(?:^|;)\s*algorithm\s+"?([A-Za-z0-9-]+)\.?"?\s*;/.exec(body)?.[1];
  const secretText = /(?:^|;)\s*secret\s+"([^"]*)"\s*;/.exec(body)?.[1];
  const secret = secretText === undefined ? undefined : decodeBase64(secretText);
  if (!secret) return undefined;
  return { secret, name: (clause[1] as string).replace(/\.$/, '').toLowerCase(), algorithm: algorithm?.toLowerCase() };
}

function fromPrivateFile(text: string): ParsedTsigSecret | undefined {
  const key = /^Key:\s*(\S+)\s*$/m.exec(text)?.[1];
  const secret = key === undefined ? undefined : decodeBase64(key);
  if (!secret) return undefined;
  const algorithm = KEYGEN_ALGORITHMS[/^Algorithm:\s*(\d+)/m.exec(text)?.[1] ?? ''];
  return algorithm ? { secret, algorithm } : { secret };
}

/**
 * The secret (and the key's name and algorithm when the text says them) from
 * a key file's content; an Error that does not quote the content otherwise.
 */
export function parseTsigSecret(text: string): ParsedTsigSecret {
  const trimmed = text.replace(/^\s*(#|\/\/).*$/gm, '').trim();
  const bare = decodeBase64(trimmed);
  const parsed = bare ? { secret: bare } : (fromKeyClause(trimmed) ?? fromPrivateFile(trimmed));
  if (!parsed) {
    throw new Error(
      'the TSIG key is neither one line of base64, a dnssec-keygen Key: line, nor a key clause as `tsig-keygen NAME` prints it (key "NAME" { algorithm hmac-sha256; secret "BASE64"; };)',
    );
  }
  return parsed;
}
