/**
 * `doctor`: the CA answers over the pinned trust and serves a pinned root;
 * when it does not, whether it was recreated (another root) or is down.
 */
import { TrustError, describeError } from '../../lib/errors.js';
import { certFingerprint } from '../../pki/x509.js';
import { loadTrust, rootsPem } from '../../trust/file.js';
import { bootstrapTrust, fetchRoots } from '../../trust/pin.js';
import { diagnosis, type Diagnosis, type DoctorContext } from './types.js';

export async function checkCa({ config, now }: DoctorContext): Promise<Diagnosis[]> {
  const trust = loadTrust(config.stateDir);
  const url = config.ca.url;
  try {
    if (!trust) {
      if (config.ca.rootFile)
        return [problem(`no trust.json yet: run cert-agent renew (it pins ${config.ca.rootFile})`)];
      await bootstrapTrust(url, config.ca.fingerprints, now);
      return [problem(`${url} is reachable and serves the pinned root, but it is not saved yet: run cert-agent renew`)];
    }
    const served = (await fetchRoots(url, { roots: rootsPem(trust) })).map(certFingerprint);
    const pinned = served.filter(
      (fp) => config.ca.fingerprints.includes(fp) || trust.roots.some((r) => r.fingerprint === fp),
    );
    if (!pinned.length) {
      const none = `serves roots ${served.join(', ')}, none pinned: check ca.fingerprint`;
      return [problem(`${url} answers over the pinned TLS trust but ${none}`)];
    }
    return [diagnosis('ok', 'CA', `${url} is reachable and its TLS chains to the pinned root ${pinned.join(', ')}`)];
  } catch (err) {
    if (!(err instanceof TrustError))
      return [problem(`${describeError(err)}: check that step-ca runs and ${url} is reachable from this container`)];
    const offered = await fetchRoots(url, { insecureFirstContact: true }).then(
      (c) => c.map(certFingerprint).join(', '),
      () => 'unknown',
    );
    const todo = 'If it was recreated on purpose, run: cert-agent enroll --fingerprint <new fingerprint>';
    return [problem(`${describeError(err)}; the CA offers root ${offered}. ${todo}`)];
  }
}

const problem = (message: string) => diagnosis('PROBLEM', 'CA', message);
