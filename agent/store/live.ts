/**
 * The live certificate seen through the configuration: where it is, who
 * owns it, when it is due. Shared by the renew pass and by `status`/`doctor`,
 * which must stay free of the ACME and network code.
 */
import type { X509Certificate } from 'node:crypto';
import type { Config } from '../config/config.js';
import { ConfigError, describeError } from '../lib/errors.js';
import { resolveId } from '../lib/fs.js';
import { CertStore, type LiveSet, type Ownership } from './sets.js';
import { nextRenewal, randomForSerial } from '../renewal/schedule.js';

export function ownershipOf(config: Config): Ownership {
  try {
    return { uid: resolveId(config.certificate.owner, 'user'), gid: resolveId(config.certificate.group, 'group') };
  } catch (err) {
    throw new ConfigError(`certificate.${/group/.test(describeError(err)) ? 'group' : 'owner'}`, describeError(err));
  }
}

export function storeFor(config: Config): CertStore {
  return new CertStore(config.certificate.dir, ownershipOf(config));
}

export function validityOf(cert: X509Certificate) {
  return { notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo) };
}

export function renewalTimeOf(live: LiveSet, config: Config): Date {
  return nextRenewal(validityOf(live.cert), config.renewal, randomForSerial(live.cert.serialNumber));
}

