import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Files under the control plane's dir: a CA, the API server's serving cert, the service-account key pair, the token file. */
export interface ControlPlaneSecrets {
  caFile: string;
  caKeyFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  serviceAccountKeyFile: string;
  serviceAccountPubFile: string;
  tokenFile: string;
  /** the admin bearer token (group system:masters) */
  token: string;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd: dir });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error('openssl not found: install it with "apt-get install -y openssl" (npm run setup does)');
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.trim() || e.message}`);
  }
}

/**
 * Makes everything kube-apiserver and kube-controller-manager need with openssl: a throwaway CA,
 * a serving cert for 127.0.0.1/localhost/kubernetes.default.svc signed by it, an RSA key pair
 * for service-account tokens, and a static token file with one admin in system:masters.
 */
export async function generateSecrets(dir: string): Promise<ControlPlaneSecrets> {
  const f = (name: string) => join(dir, name);
  await openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '7', '-subj', '/CN=fanout-test-ca', '-keyout', 'ca.key', '-out', 'ca.crt']);
  await writeFile(
    f('server-ext.cnf'),
    [
      '[req]',
      'distinguished_name = dn',
      '[dn]',
      '[ext]',
      'subjectAltName = IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local',
      'keyUsage = critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage = serverAuth',
      '',
    ].join('\n'),
  );
  await openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=kube-apiserver', '-keyout', 'server.key', '-out', 'server.csr']);
  await openssl(dir, ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '7', '-extfile', 'server-ext.cnf', '-extensions', 'ext', '-out', 'server.crt']);
  await openssl(dir, ['genrsa', '-out', 'sa.key', '2048']);
  await openssl(dir, ['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']);
  const token = randomBytes(24).toString('hex');
  await writeFile(f('tokens.csv'), `${token},admin,admin-uid,"system:masters"\n`, { mode: 0o600 });
  return {
    caFile: f('ca.crt'),
    caKeyFile: f('ca.key'),
    serverCertFile: f('server.crt'),
    serverKeyFile: f('server.key'),
    serviceAccountKeyFile: f('sa.key'),
    serviceAccountPubFile: f('sa.pub'),
    tokenFile: f('tokens.csv'),
    token,
  };
}
