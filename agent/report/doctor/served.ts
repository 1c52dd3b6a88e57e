/** `doctor`: reload.verify serves the installed certificate (a handshake, the serial compared). */
import { describeError } from '../../lib/errors.js';
import { servedSerial, verifyName } from '../../reload/verify.js';
import { liveSetQuietly } from './certificate.js';
import { diagnosis, type Diagnosis, type DoctorContext } from './types.js';

export async function checkServed({ config }: DoctorContext): Promise<Diagnosis[]> {
  const verify = config.reload.verify;
  const live = liveSetQuietly(config);
  if (!verify || !live) return [];
  const want = live.cert.serialNumber.toLowerCase().replace(/^0+/, '');
  try {
    const seen = await servedSerial(verify, verifyName(config.certificate.domains));
    if (seen.replace(/^0+/, '') === want)
      return [diagnosis('ok', 'served', `${verify} serves the installed certificate (serial ${seen})`)];
    const server = config.reload.target === 'none' ? 'server' : config.reload.target;
    const todo = `reload the ${server} (cert-agent renew --force reloads)`;
    return [diagnosis('PROBLEM', 'served', `${verify} serves serial ${seen}, not the installed ${want}: ${todo}`)];
  } catch (err) {
    return [diagnosis('PROBLEM', 'served', `no TLS answer from ${verify} (reload.verify): ${describeError(err)}`)];
  }
}
