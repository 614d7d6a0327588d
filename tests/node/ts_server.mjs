// An MCP server on the TypeScript SDK 1.x, built the way servers in the wild are, for the tests.
//
//   node ts_server.mjs PORT [--json] [--no-event-store] [--stateless] [--name NAME]
//
// Streamable HTTP on /mcp (one transport per session; SSE responses unless --json, primed
// with an event id and `retry` when it keeps an event store, as the SDK does; with --stateless
// no sessions and no event store: a server and a transport per request), and the
// deprecated HTTP+SSE transport on /sse + /messages. Prints "listening PORT" once it is.
// Tools: add, echo, progress (progress notifications), reconnect (closes its own SSE stream
// before answering: the client must resume with Last-Event-ID; with a progress token it reports
// progress 1 before closing and 2 while closed, which only a resuming client receives).
import { randomUUID } from "node:crypto";
import http from "node:http";

import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { SSEServerTransport } from "@modelcontextprotocol/sdk/server/sse.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import * as z from "zod";

const args = process.argv.slice(2);
const port = Number(args[0] ?? 0);
const json = args.includes("--json");
const stateless = args.includes("--stateless");
const keepEvents = !args.includes("--no-event-store") && !stateless;
const name = args.includes("--name") ? args[args.indexOf("--name") + 1] : "ts-upstream";
const RETRY_MS = 100;

/** Events of every stream, kept so that a client can resume after the last one it saw. */
class EventLog {
  constructor() {
    this.events = new Map(); // event id -> {streamId, message}
    this.next = 0;
  }

  async storeEvent(streamId, message) {
    const id = `${streamId}_${String(++this.next).padStart(8, "0")}`;
    this.events.set(id, { streamId, message });
    return id;
  }

  async replayEventsAfter(lastEventId, { send }) {
    const seen = this.events.get(lastEventId);
    if (!seen) return "";
    let after = false;
    for (const [id, { streamId, message }] of this.events) {
      if (id === lastEventId) {
        after = true;
      } else if (after && streamId === seen.streamId) {
        await send(id, message);
      }
    }
    return seen.streamId;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function makeServer() {
  const server = new McpServer({ name, version: "1.0.0" });
  server.registerTool(
    "add",
    { description: "Add two numbers.", inputSchema: { a: z.number(), b: z.number() } },
    async ({ a, b }) => ({ content: [{ type: "text", text: String(a + b) }] }),
  );
  server.registerTool(
    "echo",
    { description: "Say the text back.", inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: "text", text }] }),
  );
  server.registerTool(
    "progress",
    { description: "Report progress, then answer.", inputSchema: { steps: z.number() } },
    async ({ steps }, extra) => {
      const token = extra._meta?.progressToken;
      for (let step = 1; step <= steps; step++) {
        if (token !== undefined) {
          await extra.sendNotification({
            method: "notifications/progress",
            params: { progressToken: token, progress: step, total: steps },
          });
        }
      }
      return { content: [{ type: "text", text: `done in ${steps}` }] };
    },
  );
  server.registerTool(
    "reconnect",
    {
      description: "Close this call's SSE stream, then answer (SEP-1699 polling).",
      inputSchema: { text: z.string() },
    },
    async ({ text }, extra) => {
      // with a progress token: one notification before the stream closes, one while it is
      // closed (kept in the event store, replayed to the client that resumes)
      const token = extra._meta?.progressToken;
      const progress = async (step) => {
        if (token === undefined) return;
        await extra.sendNotification({
          method: "notifications/progress",
          params: { progressToken: token, progress: step, total: 2 },
        });
      };
      await progress(1);
      extra.closeSSEStream?.();
      await progress(2);
      await sleep(3 * RETRY_MS);
      return { content: [{ type: "text", text: `resumed: ${text}` }] };
    },
  );
  return server;
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString();
  return text ? JSON.parse(text) : undefined;
}

function refuse(res, status, message) {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32000, message } }));
}

const sessions = new Map(); // Mcp-Session-Id -> StreamableHTTPServerTransport
const legacy = new Map(); // sessionId -> SSEServerTransport

async function streamable(req, res) {
  if (stateless) return statelessRequest(req, res);
  const body = req.method === "POST" ? await readJson(req) : undefined;
  const sid = req.headers["mcp-session-id"];
  let transport = sid ? sessions.get(sid) : undefined;
  if (sid && !transport) return refuse(res, 404, "Session not found");
  if (!transport) {
    if (req.method !== "POST" || !isInitializeRequest(body)) {
      return refuse(res, 400, "Bad Request: No valid session ID provided");
    }
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: json,
      eventStore: keepEvents ? new EventLog() : undefined,
      retryInterval: keepEvents ? RETRY_MS : undefined,
      onsessioninitialized: (id) => sessions.set(id, transport),
    });
    transport.onclose = () => sessions.delete(transport.sessionId);
    await makeServer().connect(transport);
  }
  await transport.handleRequest(req, res, body);
}

/** Stateless mode, as the SDK's examples serve it: a new server and transport per POST, no
 * session id, no stream to GET (405). */
async function statelessRequest(req, res) {
  if (req.method !== "POST") {
    res.writeHead(405, { Allow: "POST" });
    return res.end();
  }
  const body = await readJson(req);
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: undefined,
    enableJsonResponse: json,
  });
  const server = makeServer();
  res.on("close", () => {
    transport.close();
    server.close();
  });
  await server.connect(transport);
  await transport.handleRequest(req, res, body);
}

async function sse(req, res, url) {
  if (req.method === "GET" && url.pathname === "/sse") {
    const transport = new SSEServerTransport("/messages", res);
    legacy.set(transport.sessionId, transport);
    res.on("close", () => legacy.delete(transport.sessionId));
    await makeServer().connect(transport);
    return;
  }
  const transport = legacy.get(url.searchParams.get("sessionId") ?? "");
  if (!transport) return refuse(res, 404, "Session not found");
  await transport.handlePostMessage(req, res, await readJson(req));
}

const httpServer = http.createServer(async (req, res) => {
  const url = new URL(req.url ?? "/", "http://localhost");
  try {
    if (url.pathname === "/mcp") await streamable(req, res);
    else if (url.pathname === "/sse" || url.pathname === "/messages") await sse(req, res, url);
    else refuse(res, 404, "Not found");
  } catch (error) {
    if (!res.headersSent) refuse(res, 500, String(error));
  }
});

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`listening ${httpServer.address().port}`);
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
