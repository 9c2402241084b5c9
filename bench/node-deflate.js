'use strict';
/*
 * Preloaded into the Node anchor (node -r) by scripts/bench.sh's deflate scenario: its Server
 * gets socket.io's `perMessageDeflate` option (threshold 1024 bytes, ws' defaults otherwise:
 * context takeover, one zlib stream pair per socket), since the anchor has no setting for it.
 * The anchor's own socket.io is patched, resolved from its directory (the working directory).
 */
const sio = require(require.resolve('socket.io', { paths: [process.cwd()] }));

const Base = sio.Server;
class Server extends Base {
  constructor(srv, opts = {}) {
    super(srv, { ...opts, perMessageDeflate: { threshold: 1024 } });
  }
}
sio.Server = Server;
