// A tiny web app: /health for the ready check, / says how long the server has been up.
const http = require('node:http');
const ms = require('ms');

const started = Date.now();
const server = http.createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain' }).end(`up for ${ms(Date.now() - started, { long: true })}\n`);
});
server.listen(Number(process.env.PORT ?? 3000));
