// A tiny HTTP server: /health answers once the database and the cache do.
const http = require("node:http");
const fs = require("node:fs");
const { Client } = require("pg");
const { createClient } = require("redis");

const password = fs.readFileSync("/run/secrets/db-password", "utf8").trim();
const db = new Client({ host: process.env.DATABASE_HOST, user: "app", database: "app", password });
const cache = createClient({ url: process.env.REDIS_URL });

async function main() {
  await db.connect();
  await cache.connect();
  http
    .createServer(async (req, res) => {
      if (req.url === "/health") {
        await db.query("SELECT 1");
        await cache.ping();
        res.end("ok\n");
        return;
      }
      const visits = await cache.incr("visits");
      res.end(`hello from servin, visit ${visits}\n`);
    })
    .listen(3000);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
