// The OAuth2 authorization server for pop3-probe's tests: oidc-provider
// (the npm package, a certified OpenID/OAuth2 implementation) with the
// client-credentials grant, token introspection (RFC 7662, what Dovecot's
// oauth2 passdb asks) and revocation. Started by tests/oauth2/ensure.sh;
// everything it needs comes from the environment that script sets.
//
//   OAUTH2_HTTP_PORT   plain HTTP listener (loopback): token + introspection
//   OAUTH2_HTTPS_PORT  the same over TLS, with OAUTH2_TLS_CERT / OAUTH2_TLS_KEY
//   OAUTH2_CLIENTS     path of a JSON array of client records
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import Provider from 'oidc-provider';

const httpPort = Number(process.env.OAUTH2_HTTP_PORT);
const httpsPort = Number(process.env.OAUTH2_HTTPS_PORT);
const clients = JSON.parse(fs.readFileSync(process.env.OAUTH2_CLIENTS, 'utf8'));

// The mail server's resource indicator. A client's tokens are for the
// audience its `audience` metadata names (default: the mail server), which
// is how a test gets a valid token "issued for another audience".
const MAIL = 'urn:pop3-probe:mail';

const provider = new Provider(`http://127.0.0.1:${httpPort}`, {
  clients,
  // `mailbox`: the mail account a client's tokens open (Dovecot compares it
  // with the SASL user, as Exchange compares the token's service principal
  // with the mailbox permission). `audience`: see MAIL above.
  extraClientMetadata: { properties: ['mailbox', 'audience'] },
  extraTokenClaims: async (ctx, token) => {
    const client = await provider.Client.find(token.clientId);
    return client && client.mailbox ? { mailbox: client.mailbox } : undefined;
  },
  scopes: ['mail.pop', 'other.read'],
  ttl: { ClientCredentials: 600 },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    // Only the resource server (Dovecot's client) may introspect.
    introspection: {
      enabled: true,
      allowedPolicy: (ctx, client) => client.clientId === 'dovecot-introspection',
    },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (ctx, client) => client.audience || MAIL,
      getResourceServerInfo: (ctx, resource) => ({
        scope: resource === MAIL ? 'mail.pop' : 'other.read',
        audience: resource,
        // Opaque tokens: the resource server (Dovecot) must ask the
        // introspection endpoint, so revoking a token takes effect.
        accessTokenFormat: 'opaque',
        accessTokenTTL: 600,
      }),
    },
  },
});

// One line per token request, so tests can count fetches (never the
// secret or the token: only the client and the grant).
let issued = 0;
provider.on('grant.success', (ctx) => {
  issued += 1;
  const client = ctx.oidc.client ? ctx.oidc.client.clientId : '-';
  console.log(`token issued #${issued} client=${client} grant=${ctx.oidc.params.grant_type}`);
});
provider.on('grant.error', (ctx, err) => {
  const client = ctx.oidc.client ? ctx.oidc.client.clientId : '-';
  console.log(`token refused client=${client} error=${err.error}`);
});

const app = provider.callback();
// Count of issued tokens, for tests that must prove one fetch served many
// monitors (a GET on a path oidc-provider does not use).
const handler = (req, res) => {
  if (req.url === '/_count') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`${issued}\n`);
    return;
  }
  app(req, res);
};

// Readiness: once both listeners are bound, the server writes its own pid
// to OAUTH2_PID_FILE (atomically: ensure.sh polls for it). That pid is this
// process's, not a launcher's, whatever setsid or a wrapper did on the way.
// A listen error (a port taken between ensure.sh picking it and binding)
// exits 3 with the code on one line, so ensure.sh can pick new ports.
let listening = 0;
const onListening = () => {
  listening += 1;
  if (listening < 2) return;
  console.log(`oidc-provider listening on 127.0.0.1:${httpPort} (http) and :${httpsPort} (https)`);
  const pidFile = process.env.OAUTH2_PID_FILE;
  if (pidFile) {
    fs.writeFileSync(`${pidFile}.tmp`, `${process.pid}\n`);
    fs.renameSync(`${pidFile}.tmp`, pidFile);
  }
};
const onError = (what) => (err) => {
  console.log(`oidc-provider: ${what} listener failed: ${err.code || err.message}`);
  process.exit(3);
};
http.createServer(handler).on('error', onError('http')).listen(httpPort, '127.0.0.1', onListening);
https
  .createServer(
    {
      cert: fs.readFileSync(process.env.OAUTH2_TLS_CERT),
      key: fs.readFileSync(process.env.OAUTH2_TLS_KEY),
    },
    handler,
  )
  .on('error', onError('https'))
  .listen(httpsPort, '127.0.0.1', onListening);
