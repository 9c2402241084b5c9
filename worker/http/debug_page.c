/* debug_page: see debug_page.h. */
#include "worker/http/debug_page.h"

static const char page[] =
    "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>streamio debug</title>\n"
    "<style>body{font:14px monospace;margin:2em}#log{white-space:pre-wrap;border:1px solid #ccc;"
    "padding:1em;min-height:10em}</style></head><body>\n"
    "<h1>streamio</h1>\n"
    "<form id=\"f\"><input id=\"room\" placeholder=\"room (stream key)\" size=\"40\"> "
    "<button>join</button> <span id=\"state\">connecting</span></form>\n"
    "<p>Then: <code>redis-cli XADD &lt;room&gt; '*' event hello data '{\"x\":1}'</code></p>\n"
    "<div id=\"log\"></div>\n"
    "<script>\n"
    "const $ = (id) => document.getElementById(id);\n"
    "const log = (s) => { $('log').textContent = s + '\\n' + $('log').textContent; };\n"
    "const url = location.origin.replace(/^http/, 'ws') + "
    "'/socket.io/?EIO=4&transport=websocket';\n"
    "const ws = new WebSocket(url);\n"
    "let ack = 0;\n"
    "ws.onmessage = (e) => {\n"
    "  const m = e.data;\n"
    "  if (m[0] === '0') ws.send('40');\n"
    "  else if (m === '2') ws.send('3');\n"
    "  else if (m.startsWith('40')) {\n"
    "    $('state').textContent = 'connected';\n"
    "    if (location.hash.length > 1) join(decodeURIComponent(location.hash.slice(1)));\n"
    "  }\n"
    "  else if (m.startsWith('43')) log('ack ' + m.slice(2));\n"
    "  else if (m.startsWith('42')) {\n"
    "    const [ev, arg] = JSON.parse(m.slice(2));\n"
    "    log(ev + ' ' + JSON.stringify(arg, null, 1));\n"
    "  }\n"
    "};\n"
    "ws.onclose = () => { $('state').textContent = 'closed'; };\n"
    "function join(room) { ws.send('42' + (++ack) + JSON.stringify(['join-room', room])); }\n"
    "$('f').onsubmit = (e) => { e.preventDefault(); join($('room').value); };\n"
    "</script></body></html>\n";

const char *debug_page_html(size_t *len)
{
    *len = sizeof(page) - 1;
    return page;
}
